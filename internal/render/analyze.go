package render

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
)

// valueFunc is appended to every printing action's pipeline, the way
// html/template appends its escapers, so each inserted value is checked
// where it is inserted rather than guessed at in the output.
const valueFunc = "_aionValue"

// A scope is what the parse tree tells about a value: the root data, a
// place inside a secret, or (zero scope) nothing.
type scope struct {
	root   bool
	secret string   // the value is inside this secret
	path   []string // keys below secret, as far as known
}

// chain is a field chain such as .db.password or $x.host, kept so that a
// missing-key error can name the secret and key.
type chain struct {
	base   scope
	idents []string
	node   parse.Node // for its "name:line:col", computed only on error
}

// analysis is what Load learns from a template's parse tree.
//
// References are found conservatively: a field chain on the root data
// (.db.password, $.db, index . "db") refers to its first identifier; inside
// with/range/template the walk follows what dot holds. A reference it
// cannot see statically (index . $name) is not counted; at render time it
// is a missing-key error like any other.
type analysis struct {
	refs    map[string]bool              // root keys read: secrets and EnvKey
	names   map[string]bool              // field names and string literals, see Output.names
	files   map[string]bool              // renderPath "name" literals
	chains  []chain                      // every field chain, for missing-key errors
	actions map[*parse.ActionNode]string // printing actions -> description for valueError
}

type walker struct {
	*analysis
	tmpl *template.Template
	tree *parse.Tree
	seen map[string]bool // tree name + dot, so recursive templates end
	cur  map[string]bool // secrets read by the action being walked
}

func analyze(t *template.Template) *analysis {
	a := &analysis{
		refs:    map[string]bool{},
		names:   map[string]bool{},
		files:   map[string]bool{},
		actions: map[*parse.ActionNode]string{},
	}
	w := &walker{analysis: a, tmpl: t, seen: map[string]bool{}, cur: map[string]bool{}}
	w.walkTree(t.Tree, scope{root: true})
	for act, desc := range a.actions {
		act.Pipe.Cmds = append(act.Pipe.Cmds, &parse.CommandNode{
			NodeType: parse.NodeCommand,
			Pos:      act.Pos,
			Args: []parse.Node{
				parse.NewIdentifier(valueFunc).SetPos(act.Pos),
				&parse.StringNode{NodeType: parse.NodeString, Pos: act.Pos, Quoted: strconv.Quote(desc), Text: desc},
			},
		})
	}
	return a
}

func (s scope) key() string {
	switch {
	case s.root:
		return "."
	case s.secret != "":
		return s.secret + "." + strings.Join(s.path, ".")
	}
	return "?"
}

// field is the scope of key looked up in s, recording root references.
func (w *walker) field(s scope, key string) scope {
	switch {
	case s.root:
		w.refs[key] = true
		if key == EnvKey {
			return scope{}
		}
		w.cur[key] = true
		return scope{secret: key}
	case s.secret != "":
		w.cur[s.secret] = true
		return scope{secret: s.secret, path: append(slices.Clip(s.path), key)}
	}
	return scope{}
}

func (w *walker) walkTree(tree *parse.Tree, dot scope) {
	if tree == nil || tree.Root == nil || w.seen[tree.Name+"\x00"+dot.key()] {
		return
	}
	w.seen[tree.Name+"\x00"+dot.key()] = true
	outer := w.tree
	w.tree = tree
	w.list(tree.Root, dot, map[string]scope{"$": dot})
	w.tree = outer
}

func (w *walker) list(l *parse.ListNode, dot scope, vars map[string]scope) {
	if l == nil {
		return
	}
	for _, n := range l.Nodes {
		w.node(n, dot, vars)
	}
}

func (w *walker) node(n parse.Node, dot scope, vars map[string]scope) {
	switch n := n.(type) {
	case *parse.ActionNode:
		clear(w.cur)
		v := w.pipe(n.Pipe, dot, vars)
		declare(n.Pipe, vars, v, v)
		if len(n.Pipe.Decl) == 0 {
			if _, ok := w.actions[n]; !ok {
				w.actions[n] = describe(n.Pipe, w.cur)
			}
		}
	case *parse.IfNode:
		inner := maps.Clone(vars)
		v := w.pipe(n.Pipe, dot, inner)
		declare(n.Pipe, inner, v, v)
		w.list(n.List, dot, inner)
		w.list(n.ElseList, dot, inner)
	case *parse.WithNode:
		inner := maps.Clone(vars)
		v := w.pipe(n.Pipe, dot, inner)
		declare(n.Pipe, inner, v, v)
		w.list(n.List, v, inner)
		w.list(n.ElseList, dot, inner)
	case *parse.RangeNode:
		inner := maps.Clone(vars)
		v := w.pipe(n.Pipe, dot, inner)
		// An element of a secret is still inside it, at an unknown key.
		elem := scope{secret: v.secret}
		declare(n.Pipe, inner, scope{}, elem)
		w.list(n.List, elem, inner)
		w.list(n.ElseList, dot, inner)
	case *parse.TemplateNode:
		var arg scope
		if n.Pipe != nil {
			arg = w.pipe(n.Pipe, dot, vars)
		}
		if t := w.tmpl.Lookup(n.Name); t != nil {
			w.walkTree(t.Tree, arg)
		}
	case *parse.ListNode:
		w.list(n, dot, vars)
	}
}

// declare records the variables a pipeline declares: with one variable it
// gets last; with two (range $k, $v) the first gets first.
func declare(p *parse.PipeNode, vars map[string]scope, first, last scope) {
	switch len(p.Decl) {
	case 1:
		vars[p.Decl[0].Ident[0]] = last
	case 2:
		vars[p.Decl[0].Ident[0]] = first
		vars[p.Decl[1].Ident[0]] = last
	}
}

func (w *walker) pipe(p *parse.PipeNode, dot scope, vars map[string]scope) scope {
	var v scope
	for _, c := range p.Cmds {
		v = w.cmd(c, dot, vars)
	}
	if len(p.Cmds) != 1 {
		return scope{} // a function further down changed the value
	}
	return v
}

func (w *walker) cmd(c *parse.CommandNode, dot scope, vars map[string]scope) scope {
	args := make([]scope, len(c.Args))
	for i, a := range c.Args {
		args[i] = w.arg(a, dot, vars)
	}
	if len(c.Args) == 1 {
		return args[0]
	}
	fn, ok := c.Args[0].(*parse.IdentifierNode)
	if !ok {
		return scope{}
	}
	switch fn.Ident {
	case "index":
		v := args[1]
		for _, k := range c.Args[2:] {
			lit, ok := k.(*parse.StringNode)
			if !ok {
				return scope{}
			}
			v = w.field(v, lit.Text)
		}
		return v
	case "renderPath":
		if lit, ok := c.Args[1].(*parse.StringNode); ok {
			w.files[lit.Text] = true
		}
	}
	return scope{}
}

func (w *walker) arg(n parse.Node, dot scope, vars map[string]scope) scope {
	switch n := n.(type) {
	case *parse.DotNode:
		return dot
	case *parse.FieldNode:
		return w.chain(n, dot, n.Ident)
	case *parse.VariableNode:
		return w.chain(n, vars[n.Ident[0]], n.Ident[1:])
	case *parse.ChainNode:
		w.arg(n.Node, dot, vars)
		for _, f := range n.Field {
			w.names[f] = true
		}
	case *parse.PipeNode:
		return w.pipe(n, dot, vars)
	case *parse.StringNode:
		w.names[n.Text] = true
	}
	return scope{}
}

func (w *walker) chain(n parse.Node, base scope, idents []string) scope {
	if len(idents) == 0 {
		return base
	}
	// The location is not formatted here: ErrorContext counts lines from
	// the top, which made Load quadratic in the template's size.
	w.chains = append(w.chains, chain{base, idents, n})
	v := base
	for _, id := range idents {
		w.names[id] = true
		v = w.field(v, id)
	}
	return v
}

// describe names a printing action for valueError: its source, plus the
// secrets it reads when the source does not show them (inside with/range).
func describe(p *parse.PipeNode, secrets map[string]bool) string {
	src := p.String()
	var hidden []string
	for _, s := range slices.Sorted(maps.Keys(secrets)) {
		if !strings.Contains(src, "."+s) {
			hidden = append(hidden, s)
		}
	}
	desc := "{{" + src + "}}"
	switch len(hidden) {
	case 0:
		return desc
	case 1:
		return desc + " (secret " + hidden[0] + ")"
	}
	return desc + " (secrets " + strings.Join(hidden, ", ") + ")"
}
