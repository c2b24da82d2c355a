//! Several stages of one stack in one account and region never interfere.

mod common;

use common::{place_order, stepgate, unique, ORDER};

#[tokio::test]
async fn two_stages_side_by_side_and_destroying_one_leaves_the_other_working() {
    let (a, b) = (unique("sa"), unique("sb"));
    // Deployed concurrently: neither may touch the other's resources.
    let (ra, rb) = std::thread::scope(|scope| {
        let ta = scope.spawn(|| stepgate(&["deploy", "--stage", &a, "--output", "json"]));
        let tb = scope.spawn(|| stepgate(&["deploy", "--stage", &b, "--output", "json"]));
        (
            ta.join().unwrap().ok().json(),
            tb.join().unwrap().ok().json(),
        )
    });
    let (url_a, url_b) = (
        ra["outputs"]["api_url"].as_str().unwrap(),
        rb["outputs"]["api_url"].as_str().unwrap(),
    );
    assert_ne!(url_a, url_b);
    assert_ne!(
        ra["outputs"]["state_machine_arn"],
        rb["outputs"]["state_machine_arn"]
    );
    assert_eq!(place_order(url_a, ORDER).await.0, "SUCCEEDED");
    assert_eq!(place_order(url_b, ORDER).await.0, "SUCCEEDED");

    let destroyed = stepgate(&["destroy", "--stage", &a, "--yes", "--output", "json"]).ok();
    assert_eq!(destroyed.resources_with("delete").len(), 17);
    for name in destroyed.resources_with("delete") {
        assert!(name.contains(a.as_str()), "destroy of {a} touched {name}");
    }

    // The other stage still serves orders and has not drifted.
    let (status, output) = place_order(url_b, &ORDER.replace("SUCCESS", "FAILED")).await;
    assert_eq!(status, "SUCCEEDED");
    assert_eq!(output["orderDetails"]["status"], "Rejected");
    assert_eq!(
        stepgate(&["plan", "--stage", &b, "--detailed-exitcode"]).code,
        0
    );
    stepgate(&["destroy", "--stage", &b, "--yes"]).ok();
}
