// Package merge implements the semantics of `kpt pkg update` as a pure function: the files of
// a package at its old upstream revision (origin), at its new upstream revision (upstream) and
// as the downstream has it now (local) go in; the updated local files and the conflicts found
// come out. It reads and writes nothing else, so the controller can run it on a PackageDraft's
// content and the CLI on a directory alike.
//
// The behaviour follows kpt's pkg/lib/update (kpt commit 23c57d7f, the one the conformance
// fixtures come from). What kpo does, and where it deliberately differs:
//
// # Strategies
//
//   - resource-merge (the default): every package of the tree (the root and each nested
//     directory with a Kptfile) is handled by kpt's table: added upstream → copied; deleted
//     upstream → removed when the local copy equals origin, kept otherwise; deleted locally →
//     stays deleted; added on both sides → error; present everywhere → merged. Merging a
//     package merges its Kptfile, its resources and its non-KRM files (below).
//   - fast-forward: refused with ErrLocalChanges, naming every changed file, when local differs
//     from origin. The root Kptfile's upstream, upstreamLock and render status are not changes.
//     Otherwise the result is force-delete-replace's, with the root Kptfile's render status
//     cleared, as kpt does.
//   - force-delete-replace: every file comes from upstream. As in kpt, the root Kptfile is still
//     three-way merged (so local metadata.name and local pipeline edits survive) and only its
//     upstream and upstreamLock move; a nested package with its own upstream that exists only
//     locally (an independently fetched package) is kept.
//   - copy-merge: the root Kptfile is merged; every other upstream file is copied over the
//     local one; files that upstream deleted (present in origin) are removed; files that exist
//     only locally are kept.
//
// # Resources
//
// A resource's identity is its API group (not its version), kind, namespace, name and file
// path. Namespace and name come from the `# kpt-merge: <namespace>/<name>` line comment on
// `metadata:` when it is present, so a resource renamed or moved to another namespace locally
// still matches its upstream origin. Before merging, kpo adds that comment and the
// `internal.kpt.dev/upstream-identifier: <group>|<kind>|<namespace or "default">|<name>`
// annotation to every resource of the three trees that lacks them, and to every resource of
// the result afterwards, exactly as kpt's pkg get and pkg update do. kpo matches kpt here on
// purpose: a package updated by kpo diffs cleanly against one updated by kpt, and a package
// that kpt updates later still finds its resources' origins. Identity reads the comment, not
// the annotation, as kpt does; the two always agree because both are written together.
//
// Per resource: added upstream → added; added locally → kept; deleted locally → stays deleted;
// deleted upstream → deleted if the local copy is unchanged, kept (without a conflict) if it
// was changed; present everywhere → merged field by field with kyaml's three-way walker. The
// field rules are kpt's: a value changed only upstream is taken; a value changed only locally
// is kept; a value set to null (or ~, or left empty) on one side where origin had a value
// removes the field; a value changed on both sides takes upstream's value, as kpt does, and is
// reported as a Conflict, so the local value is never lost silently. The same holds for a field
// deleted on one side and changed on the other. Two choices go beyond kpt:
//
//   - List-key inference is on: a list without an OpenAPI schema whose items all have a
//     `name` (a custom resource's list) is merged item by item, so items added locally are
//     kept. kpt turns inference off and loses them (its own infer-crd fixtures are skipped for
//     that reason). Lists with a schema (built-in kinds) use the schema's merge keys, as in kpt.
//     kpo does not load CRD schemas from the package: a custom list keyed by something other
//     than `name` is merged as a whole.
//   - Explicit nulls are kept: a null (null, ~ or an empty value) that local has and that
//     neither origin nor upstream changed stays in the output; kyaml would drop it.
//
// Every YAML file that kpo writes is re-serialised by kyaml (comments and each file's sequence
// indentation kept), as kpt does; non-YAML files are copied byte for byte. Two shortcuts keep
// an update fast and local files stable, where kpt would re-format without changing content:
// a resource that upstream left exactly as origin had it is kept as local has it (without the
// field walk), and a local file none of whose resources changed keeps its bytes. Likewise a
// file that already has every merge comment is not rewritten to add them, and kpt's final
// merge-comment pass over the result is skipped because the result is built only from trees
// that already have them (the golden tests check it would change nothing).
//
// # Non-KRM files
//
// kpt's ReplaceNonKRMFiles rule, per package: a file that is not *.yaml, *.yml or a Kptfile is
// kept as is when it was added or changed locally; otherwise it follows upstream (updated,
// added or deleted).
//
// # Kptfile
//
// kpt's Kptfile merge: metadata labels and annotations, info, pipeline and inventory are merged
// three-way, pipeline functions keyed by `name` (or, when no function anywhere has a name and
// no image is listed twice, by image without tag, or by exec); local metadata.name and status
// are kept. The root Kptfile's upstream and upstreamLock become Input.NewUpstream and
// Input.NewLock; a nested package's take upstream's values. A nested package whose Kptfile
// points at a different upstream than origin's copy was updated independently and is left
// alone, as in kpt. Unlike kpt, kpo does not fetch nested packages' own upstreams: every nested
// package is merged from the same three trees.
package merge
