"""Tools to run RoomScribe on this machine as a clinic would: synthesized visits,
a server and room agents as real processes. Used by the demo, the benchmarks
and the end-to-end tests."""
