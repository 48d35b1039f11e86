mod support;
use support::*;
use catchment_crdt::*;
use catchment_crdt::schema::*;

#[test]
fn explore() {
    let a = key(1);
    let mut topic = found(&a, "t");
    let body = "a".repeat(4 * 1024 * 1024);
    let c = topic.write(&a, journal_of(&a, 0), T0 + 1, |tx| journal::put_contribution(tx, "0123456789abcdef", Kind::Idea, &Draft { body: body.clone(), ..Draft::default() }, T0 + 1));
    println!("raw {}", c.bytes.len());
    let mut change = validate::decode(&c.bytes).err();
    println!("{:?}", change.as_ref().map(|e| e.to_string()));
    let mut ch = automerge::Change::from_bytes(c.bytes.clone()).unwrap();
    let compressed = ch.bytes().to_vec();
    println!("compressed {} type {}", compressed.len(), compressed[8]);
    let s = SignedChange { bytes: compressed, ..c.clone() };
    let t = std::time::Instant::now();
    println!("{:?} in {:?}", topic.judge(&s).is_valid_dbg(), t.elapsed());
    change = None; let _ = change;
}
trait Dbg { fn is_valid_dbg(&self) -> String; }
impl Dbg for Verdict { fn is_valid_dbg(&self) -> String { match self { Verdict::Valid(a) => format!("valid {}", a.change.raw_bytes().len()), Verdict::Pending(w) => format!("{w:?}"), Verdict::Invalid(r) => format!("{r:?}") } } }
