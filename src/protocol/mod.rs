//! Wire-protocol glue: the parts of the Kafka protocol this crate encodes itself.

// The producer and consumer that use the codec do not exist yet; without this, every
// public item of it would warn until they do.
#[allow(dead_code, unused_imports)]
pub(crate) mod records;
