//! Pure parsers of kernel text records.
