"""Stored transcripts: tables, storage, the transcript route and the live-view websocket."""
