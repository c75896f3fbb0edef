//! Wire-protocol glue: the parts of the Kafka protocol this crate encodes itself.
//!
//! Request and response messages come from the `kafka-protocol` crate; record batches are
//! ours, because the producer writes them in place and the consumer decodes them without
//! copying.

pub mod records;
