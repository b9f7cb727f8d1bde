//! The embedded EPMD's table of names, and creation numbers as `epmd_srv.c` hands them out
//! (`node_reg2`, `bump_creation`, `get_creation`). No I/O and no clock: the server passes the
//! current Unix time in.

use crate::proto::epmd::{Alive2Request, AliveName, DumpEntry, NamesEntry, NodeEntry};
use std::collections::VecDeque;

/// How many unregistered names are remembered so that a re-registration gets a new
/// creation (`epmd`'s `MAX_UNREG_COUNT`). The oldest is forgotten first.
pub(crate) const MAX_REMEMBERED: usize = 1000;

/// Why a registration is refused; both are answered with `Result = 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The name is registered already.
    Duplicate,
    /// The table holds the configured maximum.
    Full,
}

#[derive(Debug)]
struct Active {
    node: NodeEntry,
    connection: u64,
    counter: u32,
}

#[derive(Debug)]
struct Remembered {
    name: AliveName,
    port: u16,
    counter: u32,
}

/// Registered names, most recent last, and recently unregistered ones.
#[derive(Debug)]
pub(crate) struct Registry {
    active: Vec<Active>,
    remembered: VecDeque<Remembered>,
    max_active: usize,
}

/// `epmd` counts creations up from the registration time and skips 0..3, which the BEAM
/// reads as "no creation" or as the old 2-bit creations.
fn bump(counter: u32) -> u32 {
    counter.wrapping_add(1).max(4)
}

/// Version-6 registrations get the 32-bit counter; older ones 1..3 derived from it.
fn creation(counter: u32, highest_version: u16) -> u32 {
    if highest_version >= 6 {
        counter
    } else {
        counter % 3 + 1
    }
}

impl Registry {
    pub(crate) fn new(max_active: usize) -> Registry {
        Registry {
            active: Vec::new(),
            remembered: VecDeque::new(),
            max_active,
        }
    }

    /// Registers `request` for the connection `connection`; `now` is the Unix time in
    /// seconds (only used for a name seen for the first time). Returns the creation.
    pub(crate) fn register(
        &mut self,
        request: &Alive2Request,
        connection: u64,
        now: u32,
    ) -> Result<u32, Refusal> {
        if self.active.iter().any(|a| a.node.name == request.name) {
            return Err(Refusal::Duplicate);
        }
        if self.active.len() >= self.max_active {
            return Err(Refusal::Full);
        }
        let counter = match self.remembered.iter().position(|r| r.name == request.name) {
            Some(at) => {
                let old = self.remembered.remove(at).map_or(now, |r| r.counter);
                bump(old)
            }
            None => bump(now),
        };
        self.active.push(Active {
            node: NodeEntry::from(request),
            connection,
            counter,
        });
        Ok(creation(counter, request.highest_version))
    }

    /// Ends the registration held by `connection`, if any, and remembers its name.
    pub(crate) fn unregister(&mut self, connection: u64) -> Option<AliveName> {
        let at = self
            .active
            .iter()
            .position(|a| a.connection == connection)?;
        Some(self.remove(at).1)
    }

    /// Ends the registration of the name spelt `name` (STOP_REQ; `epmd`'s `node_unreg`
    /// compares the bytes), remembers it, and returns the connection that held it.
    pub(crate) fn unregister_name(&mut self, name: &[u8]) -> Option<(u64, AliveName)> {
        let at = self
            .active
            .iter()
            .position(|a| a.node.name.as_str().as_bytes() == name)?;
        Some(self.remove(at))
    }

    fn remove(&mut self, at: usize) -> (u64, AliveName) {
        let gone = self.active.remove(at);
        if self.remembered.len() >= MAX_REMEMBERED {
            self.remembered.pop_front();
        }
        let name = gone.node.name.clone();
        self.remembered.push_back(Remembered {
            name: gone.node.name,
            port: gone.node.port,
            counter: gone.counter,
        });
        (gone.connection, name)
    }

    /// True when no name is registered (KILL_REQ is obeyed then).
    pub(crate) fn is_empty(&self) -> bool {
        self.active.is_empty()
    }

    pub(crate) fn lookup(&self, name: &AliveName) -> Option<NodeEntry> {
        self.active
            .iter()
            .find(|a| &a.node.name == name)
            .map(|a| a.node.clone())
    }

    /// The NAMES list in `epmd`'s order: most recently registered first.
    pub(crate) fn names(&self) -> Vec<NamesEntry> {
        self.active
            .iter()
            .rev()
            .map(|a| NamesEntry {
                name: a.node.name.clone(),
                port: a.node.port,
            })
            .collect()
    }

    /// DUMP's two lists; the connection id stands in for `epmd`'s file descriptor.
    pub(crate) fn dump(&self) -> (Vec<DumpEntry>, Vec<DumpEntry>) {
        let active = self
            .active
            .iter()
            .rev()
            .map(|a| DumpEntry {
                name: a.node.name.clone(),
                port: a.node.port,
                fd: a.connection,
            })
            .collect();
        let old = self
            .remembered
            .iter()
            .map(|r| DumpEntry {
                name: r.name.clone(),
                port: r.port,
                fd: 0,
            })
            .collect();
        (active, old)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(name: &str, highest_version: u16) -> Alive2Request {
        Alive2Request {
            highest_version,
            ..Alive2Request::new(AliveName::new(name).unwrap(), 9000)
        }
    }

    #[test]
    fn creation_starts_after_the_clock_and_is_bumped_on_reregistration() {
        let mut registry = Registry::new(10);
        let a = request("a", 6);
        assert_eq!(registry.register(&a, 1, 1_700_000_000), Ok(1_700_000_001));
        assert_eq!(
            registry.register(&a, 2, 1_700_000_000),
            Err(Refusal::Duplicate)
        );
        assert_eq!(registry.unregister(1).unwrap().as_str(), "a");
        // The clock is not consulted again for a remembered name.
        assert_eq!(registry.register(&a, 3, 5), Ok(1_700_000_002));
        assert_eq!(registry.unregister(3).unwrap().as_str(), "a");
        assert_eq!(registry.register(&a, 4, 5), Ok(1_700_000_003));
    }

    #[test]
    fn creation_skips_0_to_3() {
        let mut registry = Registry::new(10);
        assert_eq!(registry.register(&request("a", 6), 1, 0), Ok(4));
        assert_eq!(registry.register(&request("b", 6), 2, u32::MAX), Ok(4));
        assert_eq!(registry.register(&request("c", 6), 3, 2), Ok(4));
        assert_eq!(registry.register(&request("d", 6), 4, 3), Ok(4));
        assert_eq!(registry.register(&request("e", 6), 5, 4), Ok(5));
    }

    #[test]
    fn old_versions_get_1_to_3() {
        let mut registry = Registry::new(10);
        let v5 = request("legacy", 5);
        // 1_764_177_000 + 1 = 1_764_177_001; % 3 = 1 → creation 2.
        assert_eq!(registry.register(&v5, 1, 1_764_177_000), Ok(2));
        registry.unregister(1);
        assert_eq!(registry.register(&v5, 2, 0), Ok(3));
        registry.unregister(2);
        assert_eq!(registry.register(&v5, 3, 0), Ok(1));
    }

    #[test]
    fn at_most_1000_names_are_remembered() {
        let mut registry = Registry::new(10);
        for i in 0..=MAX_REMEMBERED as u64 {
            let name = format!("n{i}");
            registry.register(&request(&name, 6), i, 100).unwrap();
            registry.unregister(i);
        }
        // n0 was forgotten: it starts again from the clock.
        assert_eq!(registry.register(&request("n0", 6), 5000, 7000), Ok(7001));
        // n1 is still remembered: its counter is bumped.
        assert_eq!(registry.register(&request("n1", 6), 5001, 7000), Ok(102));
    }

    #[test]
    fn full_table_refuses() {
        let mut registry = Registry::new(2);
        registry.register(&request("a", 6), 1, 10).unwrap();
        registry.register(&request("b", 6), 2, 10).unwrap();
        assert_eq!(
            registry.register(&request("c", 6), 3, 10),
            Err(Refusal::Full)
        );
        registry.unregister(1);
        assert!(registry.register(&request("c", 6), 3, 10).is_ok());
    }

    #[test]
    fn names_are_listed_newest_first_and_unregister_is_per_connection() {
        let mut registry = Registry::new(10);
        registry.register(&request("a", 6), 1, 10).unwrap();
        registry.register(&request("b", 6), 2, 10).unwrap();
        let names: Vec<String> = registry.names().iter().map(|n| n.to_string()).collect();
        assert_eq!(names, ["name b at port 9000", "name a at port 9000"]);
        assert_eq!(registry.unregister(7), None);
        assert_eq!(registry.unregister(2).unwrap().as_str(), "b");
        assert_eq!(registry.unregister(2), None);
        assert!(registry.lookup(&AliveName::new("b").unwrap()).is_none());
        assert_eq!(
            registry.lookup(&AliveName::new("a").unwrap()).unwrap().port,
            9000
        );
        assert_eq!(registry.names().len(), 1);
        let (active, old) = registry.dump();
        assert_eq!((active.len(), old.len()), (1, 1));
    }

    #[test]
    fn unregister_by_name_remembers_the_name_and_names_the_connection() {
        let mut registry = Registry::new(10);
        registry.register(&request("a", 6), 1, 10).unwrap();
        assert!(!registry.is_empty());
        assert_eq!(registry.unregister_name(b"b"), None);
        let (connection, name) = registry.unregister_name(b"a").unwrap();
        assert_eq!((connection, name.as_str()), (1, "a"));
        assert!(registry.is_empty());
        // The connection's own close finds nothing left to end.
        assert_eq!(registry.unregister(1), None);
        // Remembered: the next registration of the name bumps its creation.
        assert_eq!(registry.register(&request("a", 6), 2, 10), Ok(12));
    }
}
