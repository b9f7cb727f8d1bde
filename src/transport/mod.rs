//! The tokio transport. (being written)
