"""Device audio ingest: authenticate devices, store audio durably, hand it on."""
