use super::*;

#[test]
fn charlists_and_binaries_are_text() {
    let chars = Term::list([Term::Int(50), Term::Int(55)]);
    assert_eq!(text_of(&chars).as_deref(), Some("27"));
    assert_eq!(
        text_of(&Term::binary(b"0.1.0".to_vec())).as_deref(),
        Some("0.1.0")
    );
    assert_eq!(text_of(&Term::atom("x")), None);
}

#[test]
fn typed_node_lists_are_split_by_kind() {
    let entry = |name: &str, kind: &str| {
        Term::tuple([
            Term::atom(name),
            Term::Map(vec![(Term::atom("node_type"), Term::atom(kind))]),
        ])
    };
    let reply = Term::list([
        entry("b@10.0.0.2", "visible"),
        entry("beamlink@10.0.0.9", "hidden"),
        entry("a@10.0.0.1", "visible"),
        Term::atom("junk"),
    ]);
    let nodes = typed_nodes(&reply);
    let names = |l: &[NodeName]| l.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    assert_eq!(names(&nodes.visible), ["a@10.0.0.1", "b@10.0.0.2"]);
    assert_eq!(names(&nodes.hidden), ["beamlink@10.0.0.9"]);
}

#[test]
fn io_errors_read_as_plain_words() {
    let e = std::io::Error::from_raw_os_error(111);
    assert_eq!(describe_io(&e), "connection refused");
}
