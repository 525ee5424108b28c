//! Over real TCP: a client sending a body far over the limit reads its 413 (the pod drains the
//! body instead of resetting the connection under it).

mod common;

use common::*;
use muttr_pod::PodConfig;

#[tokio::test]
async fn an_oversized_upload_gets_its_413_every_time() {
    let pod = live_pod(PodConfig::default(), 61).await;
    let big = "A".repeat(2 * 1024 * 1024);
    for path in ["/", "/messages", "/aliases", "/inboxes/x"] {
        for _ in 0..3 {
            http("POST", &pod.url(path), &big).await.assert_error(413);
        }
    }
    // The connection pool still works afterwards.
    let alice = user("alice");
    assert_eq!(
        http("POST", &pod.url("/"), &alice.armored).await.status,
        200
    );
}
