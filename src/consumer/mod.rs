//! The consumer side of consumer groups: partition assignors and the consumer protocol that
//! carries subscriptions and assignments through the group coordinator.

pub mod assignor;
pub(crate) mod protocol;
