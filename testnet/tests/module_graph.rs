//! Module-dependency check: no module cycle inside a crate, so data flows one way.
//!
//! A crate whose files reach back up to one another cannot be read, tested or split layer by layer
//! (issue 21: `ledger` had an 11-file cycle around `Overlay`/`TxError`). `cargo modules` needs a nightly
//! toolchain and a full build; this check only parses the sources with `syn`, so anyone can run it in a second.
//!
//! The graph, over `crate_dir/src`:
//! - a node is a file (one file, one module; an inline `mod x { .. }` belongs to the file it sits in);
//!   `mod x;` maps to `x.rs` or `x/mod.rs` beside or below its parent, both layouts;
//! - an edge `a -> b` is any path in `a` that names an item of `b`: `use` trees and paths in expressions,
//!   types, patterns, macro arguments and serde's `with = "crate::.."` strings, starting with `crate::`,
//!   `super::`, `self::`, a child module or a name the module imports;
//! - a path through a re-export (`crate::Overlay` when `lib.rs` says `pub use execute::Overlay`) is
//!   resolved to the module that defines the item, as rustc resolves it; the re-export itself is an edge
//!   from the re-exporting module (`lib.rs -> execute.rs`), never the other way;
//! - a method call `.m(..)` is an edge to the file of an inherent `impl` that defines `m` for a type of
//!   another file (ledger hangs `apply_mint` on `Overlay` in `pegin.rs`): without types the name decides,
//!   so a name shared with another type can add a spurious edge but never hide one;
//! - declaring `mod x;` is not an edge: a parent that only declares a child does not depend on it.
//!
//! Test code counts like any other code, with one rule so that the layout does not change the verdict: an
//! inline `#[cfg(test)] mod tests { .. }` is a node of its own (`fee.rs::tests`), as `mod tests;` in its own
//! file would be. A test module is a leaf nothing depends on, so its edges cannot close a cycle; a test-only
//! `use` or helper outside such a module is still a dependency of its file.
//!
//! [`assert_no_module_cycle`] is the check to call from a test; another crate's test is one line here.
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use syn::visit::{self, Visit};

/// A module's path from the crate root, e.g. `["execute", "tests"]`; the root is empty.
type ModPath = Vec<String>;

/// The workspace directory (this test's crate is one level below it).
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn ledger_has_no_module_cycle() {
    assert_no_module_cycle(workspace().join("ledger"));
}

#[test]
fn peg_has_no_module_cycle() {
    assert_no_module_cycle(workspace().join("peg"));
}

/// The daemon's data flows one way (follower -> registry/facts -> peg-in rules -> bridge -> service), and so
/// does the peg simulation's (config -> episodes -> world -> views -> federation -> checks -> the driver).
/// (`ModuleGraph::of_crate(..).layers()` lists a crate's files bottom up.)
#[test]
fn node_has_no_module_cycle() {
    assert_no_module_cycle(workspace().join("node"));
}

/// Panics, printing every cycle as a path of files, if any module of the crate at `crate_dir` reaches back up.
pub fn assert_no_module_cycle(crate_dir: impl AsRef<Path>) {
    assert_no_module_cycle_except(crate_dir, &[]);
}

/// As [`assert_no_module_cycle`], but a cycle whose files (relative to `src/`, e.g. `"shares/mod.rs"`) are exactly
/// one of `allowed` passes: for a crate on its way to layering. A cycle that grows or shrinks fails again, and so
/// does an allowance that matches no cycle any more (remove it).
pub fn assert_no_module_cycle_except(crate_dir: impl AsRef<Path>, allowed: &[&[&str]]) {
    let graph = ModuleGraph::of_crate(crate_dir.as_ref());
    let allowed: Vec<BTreeSet<&str>> = allowed.iter().map(|files| files.iter().copied().collect()).collect();
    let cycles = graph.cycles();
    let mut report = String::new();
    for scc in &cycles {
        let files: BTreeSet<&str> = scc.iter().map(String::as_str).collect();
        if !allowed.contains(&files) {
            report.push_str(&graph.describe_cycle(scc));
        }
    }
    for files in &allowed {
        if !cycles.iter().any(|scc| scc.iter().map(String::as_str).collect::<BTreeSet<_>>() == *files) {
            let _ = writeln!(report, "allowed cycle {files:?} is gone: remove it from the allowance");
        }
    }
    assert!(report.is_empty(), "module cycles in {}:\n{report}", crate_dir.as_ref().join("src").display());
}

/// Files of one crate and the references between them.
pub struct ModuleGraph {
    modules: BTreeMap<ModPath, Module>,
    /// `from file -> to file -> example paths` (the paths as written, at most a few).
    edges: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
}

/// What name resolution needs to know about one module (file or inline).
#[derive(Default)]
struct Module {
    /// The file it sits in, relative to `src/`.
    file: String,
    children: BTreeSet<String>,
    /// Items defined here that are not modules (types, functions, constants, traits, macros).
    items: BTreeSet<String>,
    /// Module-level `use` bindings: the name and the path as written.
    bindings: BTreeMap<String, Vec<String>>,
    /// Module-level glob imports, as written.
    globs: Vec<Vec<String>>,
}

/// An inherent `impl` block: methods of a type, maybe in another file than the type.
struct ImplBlock {
    scope: ModPath,
    self_type: Vec<String>,
    methods: Vec<String>,
}

/// A call `.name(..)` or `Type::name(..)` in a module.
struct MethodCall {
    scope: ModPath,
    name: String,
}

/// A path as written somewhere in a module.
struct Reference {
    scope: ModPath,
    segments: Vec<String>,
    /// Whether it comes from a `use` (a bare first segment may then only be a child or an item, not an import).
    is_use: bool,
}

/// What a name resolves to.
#[derive(Clone, Debug, PartialEq)]
enum Found {
    Module(ModPath),
    /// An item (or something below it: variant, associated item) defined in this module.
    Item(ModPath),
    External,
}

/// How deep re-exports and imports are followed; guards against cycles of imports.
const MAX_DEPTH: usize = 32;

impl ModuleGraph {
    /// Parses every file reachable from `crate_dir/src/lib.rs` (or `main.rs`) and resolves its references.
    pub fn of_crate(crate_dir: &Path) -> Self {
        let src = crate_dir.join("src");
        let root = ["lib.rs", "main.rs"]
            .iter()
            .map(|f| src.join(f))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("no src/lib.rs or src/main.rs in {}", crate_dir.display()));
        let mut loader = Loader {
            src: src.clone(),
            modules: BTreeMap::new(),
            references: Vec::new(),
            impls: Vec::new(),
            calls: Vec::new(),
        };
        loader.load_file(&root, Vec::new());
        let mut graph = ModuleGraph { modules: loader.modules, edges: BTreeMap::new() };
        for r in &loader.references {
            graph.add_reference(r);
        }
        graph.add_method_calls(&loader.impls, &loader.calls);
        graph
    }

    /// Methods of a type written in another file than the type (`impl Overlay { fn apply_mint .. }` in
    /// `pegin.rs`) are reached by method syntax, which names no module: a call `.apply_mint(..)` is an edge
    /// to the file of that `impl`. Without types the receiver is unknown, so the name decides: these names
    /// are rarely shared with other types (a shared name makes a spurious edge, never a missed one).
    fn add_method_calls(&mut self, impls: &[ImplBlock], calls: &[MethodCall]) {
        let mut homes: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        for block in impls {
            let Some(abs) = self.absolute(&block.scope, &block.self_type, false) else { continue };
            let Some(Found::Item(type_module)) = self.resolve(&abs, 0) else { continue };
            let impl_file = &self.modules[&block.scope].file;
            if self.modules[&type_module].file != *impl_file {
                for m in &block.methods {
                    homes.entry(m).or_default().insert(impl_file.clone());
                }
            }
        }
        for call in calls {
            let from = self.modules[&call.scope].file.clone();
            for to in homes.get(call.name.as_str()).into_iter().flatten() {
                if *to != from {
                    let examples = self.edges.entry(from.clone()).or_default().entry(to.clone()).or_default();
                    if examples.len() < 3 {
                        examples.insert(format!(".{}()", call.name));
                    }
                }
            }
        }
    }

    /// Every file, relative to `src/`.
    pub fn files(&self) -> BTreeSet<String> {
        self.modules.values().map(|m| m.file.clone()).collect()
    }

    /// The files `file` depends on.
    pub fn dependencies(&self, file: &str) -> BTreeSet<String> {
        self.edges.get(file).map(|to| to.keys().cloned().collect()).unwrap_or_default()
    }

    fn add_reference(&mut self, r: &Reference) {
        let Some(abs) = self.absolute(&r.scope, &r.segments, r.is_use) else { return };
        let target = match self.resolve(&abs, 0) {
            Some(Found::Module(m) | Found::Item(m)) => m,
            Some(Found::External) | None => return,
        };
        let from = self.modules[&r.scope].file.clone();
        let to = self.modules[&target].file.clone();
        if from != to {
            let examples = self.edges.entry(from).or_default().entry(to).or_default();
            if examples.len() < 3 {
                examples.insert(r.segments.join("::"));
            }
        }
    }

    /// The path from the crate root that `segments`, written in `scope`, names; `None` if it is another crate's.
    fn absolute(&self, scope: &ModPath, segments: &[String], is_use: bool) -> Option<Vec<String>> {
        let (mut base, mut rest) = match segments.first()?.as_str() {
            "crate" | "$crate" => (Vec::new(), &segments[1..]),
            "self" | "super" => (scope.clone(), segments),
            first => {
                let module = self.modules.get(scope)?;
                let local = module.children.contains(first)
                    || module.items.contains(first)
                    || (!is_use && module.bindings.contains_key(first));
                if !local {
                    return None;
                }
                (scope.clone(), segments)
            }
        };
        while let Some(first) = rest.first() {
            match first.as_str() {
                "self" => {}
                "super" => {
                    base.pop()?;
                }
                _ => break,
            }
            rest = &rest[1..];
        }
        base.extend(rest.iter().cloned());
        Some(base)
    }

    /// Walks `abs` from the crate root, following imports and re-exports, to the module it names or the module
    /// that defines the item it names. An unknown name stops at the longest module prefix.
    fn resolve(&self, abs: &[String], depth: usize) -> Option<Found> {
        if depth > MAX_DEPTH {
            return None;
        }
        let mut current: ModPath = Vec::new();
        for segment in abs {
            match self.lookup(&current, segment, depth) {
                Some(Found::Module(m)) => current = m,
                Some(found) => return Some(found),
                None => return Some(Found::Item(current)),
            }
        }
        Some(Found::Module(current))
    }

    /// What `name` means inside `module`: a child, an item, or an import (followed to its source).
    fn lookup(&self, module: &ModPath, name: &str, depth: usize) -> Option<Found> {
        let m = self.modules.get(module)?;
        if m.children.contains(name) {
            let mut child = module.clone();
            child.push(name.to_owned());
            return Some(Found::Module(child));
        }
        if m.items.contains(name) {
            return Some(Found::Item(module.clone()));
        }
        if let Some(path) = m.bindings.get(name) {
            return match self.absolute(module, path, true) {
                Some(abs) => self.resolve(&abs, depth + 1),
                None => Some(Found::External),
            };
        }
        for glob in &m.globs {
            let Some(abs) = self.absolute(module, glob, true) else { continue };
            if let Some(Found::Module(source)) = self.resolve(&abs, depth + 1) {
                if source != *module {
                    if let Some(found) = self.lookup(&source, name, depth + 1) {
                        return Some(found);
                    }
                }
            }
        }
        None
    }

    /// The files by level, lowest first: a file's level is one above the highest of its dependencies (0: none).
    /// What a reader of an acyclic crate wants, bottom up; `None` while there is a cycle.
    pub fn layers(&self) -> Option<Vec<Vec<String>>> {
        if !self.cycles().is_empty() {
            return None;
        }
        let mut level: BTreeMap<String, usize> = BTreeMap::new();
        let files = self.files();
        while level.len() < files.len() {
            for f in &files {
                let deps = self.dependencies(f);
                if !level.contains_key(f) && deps.iter().all(|d| level.contains_key(d) || d == f) {
                    let l = deps.iter().filter_map(|d| level.get(d)).map(|l| l + 1).max().unwrap_or(0);
                    level.insert(f.clone(), l);
                }
            }
        }
        let mut layers = vec![Vec::new(); level.values().max().map_or(0, |m| m + 1)];
        for (f, l) in level {
            layers[l].push(f);
        }
        Some(layers)
    }

    /// The strongly connected components with more than one file (Tarjan), each sorted, in file order.
    pub fn cycles(&self) -> Vec<Vec<String>> {
        let files: Vec<String> = self.files().into_iter().collect();
        let index_of: BTreeMap<&str, usize> = files.iter().enumerate().map(|(i, f)| (f.as_str(), i)).collect();
        let successors: Vec<Vec<usize>> =
            files.iter().map(|f| self.dependencies(f).iter().map(|t| index_of[t.as_str()]).collect()).collect();
        let mut tarjan = Tarjan {
            successors: &successors,
            index: vec![None; files.len()],
            low: vec![0; files.len()],
            on_stack: vec![false; files.len()],
            stack: Vec::new(),
            next: 0,
            components: Vec::new(),
        };
        for v in 0..files.len() {
            if tarjan.index[v].is_none() {
                tarjan.visit(v);
            }
        }
        let mut cycles: Vec<Vec<String>> = tarjan
            .components
            .into_iter()
            .filter(|c| c.len() > 1)
            .map(|c| {
                let mut names: Vec<String> = c.into_iter().map(|i| files[i].clone()).collect();
                names.sort();
                names
            })
            .collect();
        cycles.sort();
        cycles
    }

    /// A readable account of one strongly connected component: its files, the shortest cycle through each
    /// (`a.rs -> b.rs -> a.rs`) and every edge inside it with the paths that make it.
    pub fn describe_cycle(&self, scc: &[String]) -> String {
        let members: BTreeSet<&str> = scc.iter().map(String::as_str).collect();
        let mut out = format!("cycle of {} files: {}\n", scc.len(), scc.join(", "));
        let mut seen = BTreeSet::new();
        for start in scc {
            let Some(cycle) = self.shortest_cycle(start, &members) else { continue };
            let mut key = cycle[..cycle.len() - 1].to_vec();
            key.sort();
            if seen.insert(key) {
                let _ = writeln!(out, "  {}", cycle.join(" -> "));
            }
        }
        out.push_str("  edges inside it:\n");
        for from in scc {
            for (to, examples) in self.edges.get(from).into_iter().flatten() {
                if members.contains(to.as_str()) {
                    let examples: Vec<&str> = examples.iter().map(String::as_str).collect();
                    let _ = writeln!(out, "    {from} -> {to}  ({})", examples.join(", "));
                }
            }
        }
        out
    }

    /// Breadth-first from `start` back to itself, staying inside `members`.
    fn shortest_cycle(&self, start: &str, members: &BTreeSet<&str>) -> Option<Vec<String>> {
        let mut parent: BTreeMap<String, String> = BTreeMap::new();
        let mut queue = VecDeque::from([start.to_owned()]);
        while let Some(file) = queue.pop_front() {
            for next in self.dependencies(&file) {
                if !members.contains(next.as_str()) {
                    continue;
                }
                if next == start {
                    let mut back = Vec::new();
                    let mut at = file.clone();
                    while at != start {
                        back.push(at.clone());
                        at = parent[&at].clone();
                    }
                    let mut path = vec![start.to_owned()];
                    path.extend(back.into_iter().rev());
                    path.push(start.to_owned());
                    return Some(path);
                }
                if !parent.contains_key(&next) {
                    parent.insert(next.clone(), file.clone());
                    queue.push_back(next);
                }
            }
        }
        None
    }
}

/// Tarjan's strongly connected components, recursive (module graphs are small).
struct Tarjan<'a> {
    successors: &'a [Vec<usize>],
    index: Vec<Option<usize>>,
    low: Vec<usize>,
    on_stack: Vec<bool>,
    stack: Vec<usize>,
    next: usize,
    components: Vec<Vec<usize>>,
}

impl Tarjan<'_> {
    fn visit(&mut self, v: usize) {
        self.index[v] = Some(self.next);
        self.low[v] = self.next;
        self.next += 1;
        self.stack.push(v);
        self.on_stack[v] = true;
        for &w in &self.successors[v] {
            match self.index[w] {
                None => {
                    self.visit(w);
                    self.low[v] = self.low[v].min(self.low[w]);
                }
                Some(iw) if self.on_stack[w] => self.low[v] = self.low[v].min(iw),
                Some(_) => {}
            }
        }
        if Some(self.low[v]) == self.index[v] {
            let mut component = Vec::new();
            while let Some(w) = self.stack.pop() {
                self.on_stack[w] = false;
                component.push(w);
                if w == v {
                    break;
                }
            }
            self.components.push(component);
        }
    }
}

/// Reads files module by module and gathers what resolution needs.
struct Loader {
    src: PathBuf,
    modules: BTreeMap<ModPath, Module>,
    references: Vec<Reference>,
    impls: Vec<ImplBlock>,
    calls: Vec<MethodCall>,
}

impl Loader {
    fn load_file(&mut self, path: &Path, module: ModPath) {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let file = syn::parse_file(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()));
        let rel = path.strip_prefix(&self.src).expect("every module file is under src/").to_string_lossy().into_owned();
        // Where `mod x;` declared in this file looks for `x.rs` / `x/mod.rs`.
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let parent = path.parent().expect("a file has a directory");
        let dir = if matches!(name, "lib.rs" | "main.rs" | "mod.rs") {
            parent.to_path_buf()
        } else {
            parent.join(path.file_stem().expect("a .rs file has a stem"))
        };
        self.load_items(&file.items, &rel, &dir, module);
    }

    /// One module's items (a file's, or an inline module's), then the files of its `mod x;` children.
    fn load_items(&mut self, items: &[syn::Item], file: &str, dir: &Path, module: ModPath) {
        let mut m = Module { file: file.to_owned(), ..Module::default() };
        let mut inline = Vec::new();
        let mut external = Vec::new();
        for item in items {
            match item {
                syn::Item::Mod(child) => {
                    assert!(
                        !child.attrs.iter().any(|a| a.path().is_ident("path")),
                        "#[path] on `mod {}` in {file} is not supported",
                        child.ident
                    );
                    m.children.insert(child.ident.to_string());
                    match &child.content {
                        Some((_, content)) => {
                            inline.push((child.ident.to_string(), content, is_cfg_test(&child.attrs)))
                        }
                        None => external.push(child.ident.to_string()),
                    }
                }
                syn::Item::Use(u) => collect_use(&u.tree, &mut Vec::new(), &mut |path, binding| match binding {
                    Some(name) => {
                        m.bindings.insert(name, path);
                    }
                    None => m.globs.push(path),
                }),
                syn::Item::Impl(block) if block.trait_.is_none() => {
                    if let syn::Type::Path(ty) = &*block.self_ty {
                        let methods = block
                            .items
                            .iter()
                            .filter_map(|i| match i {
                                // A private method is called from its own module only: no edge to find.
                                syn::ImplItem::Fn(f) if !matches!(f.vis, syn::Visibility::Inherited) => {
                                    Some(f.sig.ident.to_string())
                                }
                                _ => None,
                            })
                            .collect();
                        let self_type = ty.path.segments.iter().map(|s| s.ident.to_string()).collect();
                        self.impls.push(ImplBlock { scope: module.clone(), self_type, methods });
                    }
                }
                other => {
                    if let Some(name) = item_name(other) {
                        m.items.insert(name);
                    }
                }
            }
        }
        self.modules.insert(module.clone(), m);
        // References of this module's own items (inline children are walked as their own scope below).
        let mut visitor =
            RefVisitor { scope: module.clone(), references: &mut self.references, calls: &mut self.calls };
        for item in items {
            if !matches!(item, syn::Item::Mod(_)) {
                visitor.visit_item(item);
            } else if let syn::Item::Mod(child) = item {
                for attr in &child.attrs {
                    visitor.visit_attribute(attr);
                }
            }
        }
        for (name, content, is_test) in inline {
            let mut child = module.clone();
            child.push(name.clone());
            // An inline test module is a node of its own, as it would be in its own file: moving it out
            // must not change the verdict.
            let node = if is_test { format!("{file}::{name}") } else { file.to_owned() };
            self.load_items(content, &node, &dir.join(&name), child);
        }
        for name in external {
            let candidates = [dir.join(format!("{name}.rs")), dir.join(&name).join("mod.rs")];
            let path = candidates.iter().find(|p| p.exists()).unwrap_or_else(|| {
                panic!("`mod {name};` in {file}: neither {:?} nor {:?}", candidates[0], candidates[1])
            });
            let mut child = module.clone();
            child.push(name);
            self.load_file(&path.clone(), child);
        }
    }
}

/// `#[cfg(test)]`.
fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| a.path().is_ident("cfg") && a.parse_args::<syn::Path>().is_ok_and(|p| p.is_ident("test")))
}

/// The name an item defines in its module's namespace, if any (modules and uses are handled apart).
fn item_name(item: &syn::Item) -> Option<String> {
    let ident = match item {
        syn::Item::Const(i) => &i.ident,
        syn::Item::Enum(i) => &i.ident,
        syn::Item::Fn(i) => &i.sig.ident,
        syn::Item::Static(i) => &i.ident,
        syn::Item::Struct(i) => &i.ident,
        syn::Item::Trait(i) => &i.ident,
        syn::Item::TraitAlias(i) => &i.ident,
        syn::Item::Type(i) => &i.ident,
        syn::Item::Union(i) => &i.ident,
        syn::Item::Macro(i) => i.ident.as_ref()?,
        _ => return None,
    };
    Some(ident.to_string())
}

/// Flattens a use tree into full paths; `emit(path, Some(name))` for a binding (`self` and renames included),
/// `emit(path, None)` for a glob. `use x as _` emits a binding named `_`, which no path can name.
fn collect_use(tree: &syn::UseTree, prefix: &mut Vec<String>, emit: &mut dyn FnMut(Vec<String>, Option<String>)) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            collect_use(&p.tree, prefix, emit);
            prefix.pop();
        }
        syn::UseTree::Name(n) if n.ident == "self" => {
            let name = prefix.last().cloned();
            emit(prefix.clone(), name);
        }
        syn::UseTree::Name(n) => {
            let mut path = prefix.clone();
            path.push(n.ident.to_string());
            emit(path, Some(n.ident.to_string()));
        }
        syn::UseTree::Rename(r) => {
            let mut path = prefix.clone();
            if r.ident != "self" {
                path.push(r.ident.to_string());
            }
            emit(path, Some(r.rename.to_string()));
        }
        syn::UseTree::Glob(_) => emit(prefix.clone(), None),
        syn::UseTree::Group(g) => {
            for t in &g.items {
                collect_use(t, prefix, emit);
            }
        }
    }
}

/// A token of a macro's arguments, as far as path scanning cares.
enum Token {
    Ident(String),
    Colon,
    Other,
}

/// Collects every path of one module scope: `use` trees anywhere (also inside functions), expression, type
/// and pattern paths, paths inside macro arguments, and path strings in attributes (serde's `with = ".."`).
struct RefVisitor<'a> {
    scope: ModPath,
    references: &'a mut Vec<Reference>,
    calls: &'a mut Vec<MethodCall>,
}

impl RefVisitor<'_> {
    fn push(&mut self, segments: Vec<String>, is_use: bool) {
        // A bare one-segment path is a local, a prelude name or something a `use` of this scope brought in
        // (that `use` is already an edge).
        if segments.len() > 1 || segments.first().is_some_and(|s| s == "crate" || s == "super") {
            self.references.push(Reference { scope: self.scope.clone(), segments, is_use });
        }
    }

    /// `a::b::c` sequences in a macro's or attribute's tokens, not preceded by `::` (a leading `::` is another
    /// crate), and path strings. Walks with `syn`'s cursor so it needs no `proc-macro2` of its own.
    fn scan_tokens(&mut self, cursor: syn::buffer::Cursor<'_>) {
        let mut tokens = Vec::new();
        let mut c = cursor;
        while !c.eof() {
            if let Some((inside, _, _, next)) = c.any_group() {
                self.scan_tokens(inside);
                tokens.push(Token::Other);
                c = next;
            } else if let Some((ident, next)) = c.ident() {
                tokens.push(Token::Ident(ident.to_string()));
                c = next;
            } else if let Some((punct, next)) = c.punct() {
                tokens.push(if punct.as_char() == ':' { Token::Colon } else { Token::Other });
                c = next;
            } else if let Some((literal, next)) = c.literal() {
                self.scan_path_string(&literal.to_string());
                tokens.push(Token::Other);
                c = next;
            } else if let Some((_, next)) = c.token_tree() {
                tokens.push(Token::Other);
                c = next;
            } else {
                break;
            }
        }
        let colons = |i: usize| matches!((tokens.get(i), tokens.get(i + 1)), (Some(Token::Colon), Some(Token::Colon)));
        let mut i = 0;
        while i < tokens.len() {
            let Token::Ident(first) = &tokens[i] else {
                i += 1;
                continue;
            };
            if i >= 2 && colons(i - 2) {
                i += 1;
                continue;
            }
            let mut segments = vec![first.clone()];
            let mut j = i + 1;
            while colons(j) {
                let Some(Token::Ident(next)) = tokens.get(j + 2) else { break };
                segments.push(next.clone());
                j += 3;
            }
            if segments.len() > 1 {
                self.push(segments, false);
            }
            i = j.max(i + 1);
        }
    }

    fn scan_macro(&mut self, mac: &syn::Macro) {
        let buffer = syn::buffer::TokenBuffer::new2(mac.tokens.clone());
        self.scan_tokens(buffer.begin());
    }

    /// A string literal that holds a path into this crate, e.g. `"crate::codec::amount::serialize"`.
    fn scan_path_string(&mut self, literal: &str) {
        let Some(text) = literal.strip_prefix('"').and_then(|s| s.strip_suffix('"')) else { return };
        if !(text.starts_with("crate::") || text.starts_with("super::") || text.starts_with("self::")) {
            return;
        }
        if let Ok(path) = syn::parse_str::<syn::Path>(text) {
            self.push(path.segments.iter().map(|s| s.ident.to_string()).collect(), false);
        }
    }
}

impl<'ast> Visit<'ast> for RefVisitor<'_> {
    fn visit_item_mod(&mut self, _: &'ast syn::ItemMod) {
        // Modules are separate scopes: `Loader::load_items` walks them with their own visitor.
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        let mut paths = Vec::new();
        collect_use(&u.tree, &mut Vec::new(), &mut |path, _| paths.push(path));
        for path in paths {
            self.push(path, true);
        }
    }

    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {
        // `pub(crate)`, `pub(super)`: who may see an item, not what it uses.
    }

    fn visit_expr_method_call(&mut self, call: &'ast syn::ExprMethodCall) {
        self.calls.push(MethodCall { scope: self.scope.clone(), name: call.method.to_string() });
        visit::visit_expr_method_call(self, call);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        if let Some(last) = path.segments.last().filter(|_| path.segments.len() > 1) {
            self.calls.push(MethodCall { scope: self.scope.clone(), name: last.ident.to_string() });
        }
        if path.leading_colon.is_none() {
            self.push(path.segments.iter().map(|s| s.ident.to_string()).collect(), false);
        }
        visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.scan_macro(mac);
        visit::visit_macro(self, mac);
    }

    fn visit_attribute(&mut self, attr: &'ast syn::Attribute) {
        if let syn::Meta::List(list) = &attr.meta {
            let buffer = syn::buffer::TokenBuffer::new2(list.tokens.clone());
            self.scan_tokens(buffer.begin());
        }
        if let syn::Meta::NameValue(nv) = &attr.meta {
            if let syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) = &nv.value {
                self.scan_path_string(&format!("{:?}", s.value()));
            }
        }
    }
}

/// Writes `files` (path relative to `src/`, contents) into a fresh crate directory.
#[cfg(test)]
fn synthetic_crate(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (path, text) in files {
        let path = dir.path().join("src").join(path);
        std::fs::create_dir_all(path.parent().expect("has a parent")).expect("create dirs");
        std::fs::write(path, text).expect("write file");
    }
    dir
}

#[test]
fn checker_reports_a_cycle_through_reexports_expressions_and_both_layouts() {
    // `a.rs` + `a/sub.rs` and `b/mod.rs` + `b/c.rs`: the two layouts. `a/sub.rs` needs `Thing` through the root
    // re-export, `b/mod.rs` reaches back in an expression through `a.rs`'s re-export of `sub::Overlay`: a cycle
    // `a/sub.rs <-> b/mod.rs` that `a.rs` and `lib.rs` (which only re-export) are not part of.
    let dir = synthetic_crate(&[
        ("lib.rs", "mod a; pub mod b; mod leaf; pub use b::Thing;"),
        ("a.rs", "mod sub;\npub use sub::Overlay;"),
        (
            "a/sub.rs",
            "use crate::Thing;\npub struct Overlay(pub Thing);\nimpl Thing { pub fn wrap(self) {} fn own(&self) {} }",
        ),
        ("b/mod.rs", "mod c;\npub struct Thing;\npub fn f() { let _ = crate::a::Overlay::new(); }"),
        ("b/c.rs", "use super::Thing; use crate::leaf::Leaf; pub fn g(t: Thing, _: Leaf) { t.wrap() }"),
        ("leaf.rs", "pub struct Leaf;\nimpl Leaf { pub fn shine(&self) { self.own() } }"),
    ]);
    let graph = ModuleGraph::of_crate(dir.path());
    assert_eq!(graph.cycles(), vec![vec!["a/sub.rs".to_owned(), "b/mod.rs".to_owned()]]);
    assert!(graph.dependencies("leaf.rs").is_empty(), "a private method (`own`) is not reached from elsewhere");
    assert_eq!(graph.dependencies("lib.rs"), BTreeSet::from(["b/mod.rs".to_owned()]), "a re-export is an edge down");
    assert_eq!(graph.dependencies("b/mod.rs"), BTreeSet::from(["a/sub.rs".to_owned()]), "to the defining file");
    let c = ["a/sub.rs", "b/mod.rs", "leaf.rs"].map(String::from);
    assert_eq!(graph.dependencies("b/c.rs"), BTreeSet::from(c), "`.wrap()` is defined in a/sub.rs");
    let report = graph.describe_cycle(&graph.cycles()[0]);
    assert!(report.contains("a/sub.rs -> b/mod.rs -> a/sub.rs"), "{report}");
    assert!(report.contains("b/mod.rs -> a/sub.rs  (crate::a::Overlay::new)"), "{report}");
    let failure = std::panic::catch_unwind(|| assert_no_module_cycle(dir.path())).expect_err("a cycle must fail");
    let message = failure.downcast_ref::<String>().expect("a formatted panic message");
    assert!(message.contains("a/sub.rs -> b/mod.rs -> a/sub.rs"), "{message}");
    assert_no_module_cycle_except(dir.path(), &[&["a/sub.rs", "b/mod.rs"]]);
    let bigger = std::panic::catch_unwind(|| assert_no_module_cycle_except(dir.path(), &[&["a/sub.rs"]]));
    assert!(bigger.is_err(), "an allowance must match the cycle exactly");
    let stale = &[&["a/sub.rs", "b/mod.rs"][..], &["leaf.rs", "lib.rs"]];
    let stale = std::panic::catch_unwind(|| assert_no_module_cycle_except(dir.path(), stale));
    assert!(stale.is_err(), "an allowance for a cycle that is gone must be removed");
}

#[test]
fn checker_passes_a_layered_tree_and_sees_macros_strings_and_super() {
    // Layers: leaf <- mid (serde string, macro argument) <- top/mod.rs <- top/tests.rs (super::*); no way back
    // but from mid.rs's inline test module.
    let dir = synthetic_crate(&[
        ("lib.rs", "pub mod leaf; pub mod mid; pub mod top; pub use leaf::Leaf;"),
        ("leaf.rs", "pub struct Leaf; pub fn amount() {}"),
        (
            "mid.rs",
            "#[serde(with = \"crate::leaf::amount\")]\npub struct Mid;\npub fn f() { assert!(matches!(1, _) && crate::Leaf == crate::Leaf); }\n\
             #[cfg(test)]\nmod tests { #[test] fn up() { crate::top::t(); } }",
        ),
        ("top/mod.rs", "#[cfg(test)]\nmod tests;\npub fn t() -> crate::mid::Mid { crate::mid::Mid }"),
        ("top/tests.rs", "use super::*;\n#[test] fn x() { t(); }"),
    ]);
    let graph = ModuleGraph::of_crate(dir.path());
    assert!(graph.cycles().is_empty(), "{:?}", graph.cycles());
    assert_eq!(graph.dependencies("mid.rs"), BTreeSet::from(["leaf.rs".to_owned()]));
    assert_eq!(graph.dependencies("top/mod.rs"), BTreeSet::from(["mid.rs".to_owned()]));
    assert_eq!(graph.dependencies("top/tests.rs"), BTreeSet::from(["top/mod.rs".to_owned()]));
    // The inline test module of mid.rs calls up into top/mod.rs: a leaf of its own, not a cycle through mid.rs.
    assert_eq!(graph.dependencies("mid.rs::tests"), BTreeSet::from(["top/mod.rs".to_owned()]));
    let layers = graph.layers().expect("no cycle");
    // lib.rs only re-exports leaf.rs, so it sits just above it.
    let expected: Vec<Vec<String>> =
        [&["leaf.rs"][..], &["lib.rs", "mid.rs"], &["top/mod.rs"], &["mid.rs::tests", "top/tests.rs"]]
            .iter()
            .map(|l| l.iter().map(|f| f.to_string()).collect())
            .collect();
    assert_eq!(layers, expected);
    assert_no_module_cycle(dir.path());
}
