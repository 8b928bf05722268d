//! The placement patch: `apply_placement` on an arbitrary Service-shaped object, then the JSON
//! patch from the original to the placed Service. Applying the patch gives the placed Service
//! back; placing again changes nothing; the other placement and back gives the same Service; the
//! template says what it was placed for; what no profile owns is kept.
#![no_main]

#[path = "service_shape.rs"]
mod service_shape;

use gaia_contract::{apply_placement, Placement, PlacementProfiles, ServiceView};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use service_shape::{object, Svc};

fuzz_target!(|s: Svc| {
    let profiles = PlacementProfiles::default();
    let original = object(&s);
    let (p, other) = if s.gpu_first {
        (Placement::Gpu, Placement::Cpu)
    } else {
        (Placement::Cpu, Placement::Gpu)
    };
    let mut placed = original.clone();
    if apply_placement(&mut placed, p, &profiles).is_err() {
        return;
    }
    assert_eq!(ServiceView::new(&placed).placed_for(), Some(p));
    // The patch the webhook would send takes the original to the placed Service.
    let patch = json_patch::diff(&original, &placed);
    let mut patched = original.clone();
    json_patch::patch(&mut patched, &patch).expect("the diff applies");
    assert_eq!(patched, placed);
    // Idempotent, and the other placement and back is the same Service.
    let mut again = placed.clone();
    apply_placement(&mut again, p, &profiles).expect("placed once, placed twice");
    assert_eq!(again, placed);
    let mut round = placed.clone();
    apply_placement(&mut round, other, &profiles).expect("the other placement");
    apply_placement(&mut round, p, &profiles).expect("and back");
    assert_eq!(round, placed);
    // The image and the name of every container are kept.
    let images = |v: &Value| {
        v.pointer("/spec/template/spec/containers")
            .cloned()
            .map(|c| {
                c.as_array().map(|a| {
                    a.iter()
                        .map(|c| (c.get("image").cloned(), c.get("name").cloned()))
                        .collect::<Vec<_>>()
                })
            })
    };
    assert_eq!(images(&placed), images(&original));
});
