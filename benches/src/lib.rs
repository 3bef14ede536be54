//! xft benchmarks
