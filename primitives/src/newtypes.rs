//! Newtypes for the counters of the protocol, so a round can never be passed where a height is expected.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! counter {
    ($(#[$doc:meta])* $name:ident($inner:ty)) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash,
            BorshSerialize, BorshDeserialize, Serialize, Deserialize,
        )]
        #[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl $name {
            /// The next value; saturates instead of wrapping.
            pub fn next(self) -> Self {
                Self(self.0.saturating_add(1))
            }
            /// The previous value, or `None` at zero.
            pub fn prev(self) -> Option<Self> {
                self.0.checked_sub(1).map(Self)
            }
            /// The raw number.
            pub fn get(self) -> $inner {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<$inner> for $name {
            fn from(v: $inner) -> Self {
                Self(v)
            }
        }
    };
}

counter!(
    /// Height of a sidechain block; genesis is height 0, the first produced block height 1.
    Height(u64)
);
counter!(
    /// Consensus round within a height; starts at 0.
    Round(u32)
);
counter!(
    /// Position of a validator in the validator set of a height.
    ValidatorIndex(u16)
);
counter!(
    /// Height of a Bitcoin block.
    BtcHeight(u32)
);

impl ValidatorIndex {
    /// As an index into a `Vec`.
    pub fn as_usize(self) -> usize {
        usize::from(self.0)
    }
}
