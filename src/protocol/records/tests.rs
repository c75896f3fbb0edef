//! Cross-module tests: golden vectors and property tests.
