//! The parser and the writer, on good and hostile documents.

use super::*;

#[test]
fn round_trips() {
    let text = r#"{"a":[1,-2.5e3,true,false,null],"b":"x\"\\\n\u00e9\ud83d\ude00","c":{}}"#;
    let v = parse(text).unwrap();
    assert_eq!(v.get("a").unwrap().as_array().unwrap().len(), 5);
    assert_eq!(v.get("b").unwrap().as_str(), Some("x\"\\\né😀"));
    assert_eq!(parse(&v.to_json()).unwrap(), v);
    assert_eq!(parse(" 42 ").unwrap().as_i64(), Some(42));
    assert_eq!(
        parse(r#"{"k":1,"k":2}"#)
            .unwrap()
            .get("k")
            .unwrap()
            .as_u64(),
        Some(2)
    );
    assert_eq!(Value::string("\u{1}").to_json(), r#""\u0001""#);
}

#[test]
fn pretty_json_reads_back() {
    let v = parse(r#"{"a":[1,{"b":"c"}],"d":{},"e":[]}"#).unwrap();
    let pretty = v.to_json_pretty();
    assert!(pretty.starts_with("{\n  \"a\": [\n    1,"), "{pretty}");
    assert_eq!(parse(&pretty).unwrap(), v);
}

#[test]
fn bad_documents_are_errors_not_panics() {
    for bad in [
        "",
        "{",
        "[1,",
        "{\"a\"}",
        "{\"a\":}",
        "tru",
        "\"\\u12\"",
        "\"\\ud800\"",
        "01x",
        "1 2",
        "-",
        "1.",
        "1e",
        "\"a\nb\"",
        "{\"a\":1,}",
    ] {
        assert!(parse(bad).is_err(), "{bad:?}");
    }
    let deep = "[".repeat(100) + &"]".repeat(100);
    assert!(parse(&deep).unwrap_err().contains("deeply"));
    // Every prefix of a good document fails cleanly.
    let good = r#"{"x":[1,{"y":"z\u0041"}],"n":null}"#;
    for cut in 0..good.len() {
        let _ = parse(&good[..cut]);
    }
}
