"""RoomScribe server: device ingest, transcription, NLP, review queue."""

__version__ = "0.1.0"
