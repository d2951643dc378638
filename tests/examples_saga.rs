//! Runs the saga_booking example as a user would and checks its story: the flaky flight desk
//! retried on the policy's delays until it confirms, the hotel booked by the partner desk the
//! ladder climbs to, the car failing for good, the hotel and
//! then the flight cancelled, nothing left in the dead letters. `cargo test` builds the examples
//! first; when running this file alone, build them too: `cargo build --examples && cargo test
//! --test examples_saga`.

mod common;

use common::run_example as run;

#[test]
fn the_trip_saga_retries_the_flaky_flight_escalates_the_hotel_and_cancels_in_reverse_order_when_the_car_fails(
) {
    let (_, out) = run("saga_booking", &[]);
    let lines: Vec<&str> = out.lines().collect();
    let expected = [
        "== booking a trip: flight, hotel, car",
        "[  0.000s] flight: book (attempt 1) -> failed, transient: agent 'flight-desk' failed the task: 503 Service Unavailable",
        "[  0.200s] flight: book (attempt 2) -> failed, transient: agent 'flight-desk' failed the task: 503 Service Unavailable",
        "[  0.600s] flight: book (attempt 3) -> confirmed FL-0042",
        "[  0.600s] hotel: book -> confirmed HP-0042 by partner-hotel-desk (the ladder climbed past hotel-desk)",
        "[  0.600s] car: book (attempt 1) -> failed, permanent: agent 'car-desk' failed the task: permanent: none left for car",
        "[  0.600s] hotel: cancel HP-0042 at partner-hotel-desk -> cancelled",
        "[  0.600s] flight: cancel FL-0042 -> cancelled",
        "== outcome",
        "compensated: car failed for good after 1 attempt(s) (agent 'car-desk' failed the task: permanent: none left for car)",
        "undone, last step first: hotel, flight",
        "dead letters: 0",
    ];
    assert_eq!(lines, expected, "the story changed:\n{out}");
}
