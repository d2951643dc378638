use overseer_conformance::parse;
fn nested(depth: usize) -> String {
    let mut t = String::new();
    for l in 0..depth {
        t.push_str(&" ".repeat(l));
        t.push_str(&format!("sup s{l}\n"));
    }
    t
}
fn run(depth: usize, op: &'static str) -> bool {
    let text = nested(depth);
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let s = parse(&text).unwrap();
            match op {
                "clone" => {
                    let c = s.clone();
                    std::mem::forget(c);
                }
                "eq" => {
                    let c = s.clone();
                    assert!(c == s);
                    std::mem::forget(c);
                }
                "debug" => {
                    let _ = format!("{s:?}");
                }
                "pretty" => {
                    let _ = format!("{s:#?}");
                }
                _ => {}
            }
            std::mem::forget(s);
        })
        .unwrap()
        .join()
        .is_ok()
}
#[test]
fn probe() {
    for op in ["parse", "drop", "clone", "debug", "pretty"] {
        for depth in [256usize, 512, 1024] {
            if op == "drop" {
                let text = nested(depth);
                let ok = std::thread::Builder::new()
                    .stack_size(2 << 20)
                    .spawn(move || {
                        drop(parse(&text).unwrap());
                    })
                    .unwrap()
                    .join()
                    .is_ok();
                println!("{op} {depth} {ok}");
                continue;
            }
            println!("{op} {depth} {}", run(depth, op));
        }
    }
}
