//! EPMD client and server. (being written)
