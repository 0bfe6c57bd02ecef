//! Token scopes parse strictly and print canonically: any text either fails to parse or
//! parses to a scope whose printed form parses back to the same scope, and grants only
//! what it names. Arbitrary text includes every separator and capability spelling.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use proptest::prelude::*;
use strongroom_store::tokens::{Capability, Scope};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn any_text_parses_strictly_and_round_trips(text in "[a-z*/:,_ -]{0,40}|(default|prod|\\*)/(prod|\\*)(:(list|read|write|delete|use|reed|)(,(list|read|write|delete|use|))*)?") {
        if let Ok(scope) = Scope::parse(&text) {
            let printed = scope.to_string();
            prop_assert_eq!(Scope::parse(&printed).unwrap(), scope.clone());
            // A capability is granted only when the text named it, or named none.
            let listed = text.split_once(':').map(|(_, caps)| caps.to_owned());
            for capability in Capability::ALL {
                let named = listed
                    .as_deref()
                    .is_none_or(|caps| caps.split(',').any(|c| c == capability.as_str()));
                prop_assert_eq!(scope.capabilities.contains(capability), named, "{} in {:?}", capability, text);
            }
        }
    }
}
