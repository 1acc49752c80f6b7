// Go's regexp, the dialect of stakater's reload lists: tests/go_dialect.rs runs it as the
// reference for src/go_regex.rs. Standard library only.
module kube-reloader/hack/tools/goregex

go 1.26.0
