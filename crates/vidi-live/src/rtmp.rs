//! The RTMP and RTMPS ingest service.
