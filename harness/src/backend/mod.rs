//! The embedded reference backend (being written).
