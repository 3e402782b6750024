//! The 2012 incident replayed end to end (being written).
