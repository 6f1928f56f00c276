// Package variantset renders the PackageVariants of a PackageVariantSet: it unrolls nothing
// and reads nothing from the cluster, it evaluates a target's template (literal values and CEL
// expressions) against what the controller read, so every rule of rendering is table-tested
// without an API server.
package variantset

import (
	"errors"
	"fmt"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/ext"
)

// costLimit bounds the work of one expression (CEL's cost units: roughly one per operation and
// per byte of a string operation): an expression in a user's spec never runs unbounded.
const costLimit = 100_000

// maxResult bounds the length of the string an expression returns.
const maxResult = 4096

// The variables an expression sees (Porch's names).
const (
	varRepoDefault    = "repoDefault"
	varPackageDefault = "packageDefault"
	varUpstream       = "upstream"
	varRepository     = "repository"
	varTarget         = "target"
)

// TemplateError is an expression of a template that does not compile or evaluate to a string,
// or a rendered value kpo refuses: Field is its path in the spec, Expr the expression (empty
// for a literal).
type TemplateError struct {
	Field string
	Expr  string
	Err   error
}

func (e *TemplateError) Error() string {
	if e.Expr == "" {
		return fmt.Sprintf("%s: %v", e.Field, e.Err)
	}
	return fmt.Sprintf("%s: expression %q: %v", e.Field, e.Expr, e.Err)
}

func (e *TemplateError) Unwrap() error { return e.Err }

// Evaluator compiles and evaluates the expressions of templates, each compiled once.
type Evaluator struct {
	env      *cel.Env
	programs map[string]cel.Program
}

// NewEvaluator returns an Evaluator with Porch's variables declared and CEL's string extension
// functions (split, replace, lowerAscii, …, as in Kubernetes' CEL).
func NewEvaluator() (*Evaluator, error) {
	env, err := cel.NewEnv(
		ext.Strings(),
		cel.Variable(varRepoDefault, cel.StringType),
		cel.Variable(varPackageDefault, cel.StringType),
		cel.Variable(varUpstream, cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable(varRepository, cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable(varTarget, cel.MapType(cel.StringType, cel.DynType)),
	)
	if err != nil {
		return nil, err
	}
	return &Evaluator{env: env, programs: map[string]cel.Program{}}, nil
}

// compile returns the program of expr, which must have a string (or dynamic) result.
func (e *Evaluator) compile(field, expr string) (cel.Program, error) {
	if p, ok := e.programs[expr]; ok {
		return p, nil
	}
	ast, iss := e.env.Compile(expr)
	if iss.Err() != nil {
		return nil, &TemplateError{Field: field, Expr: expr, Err: iss.Err()}
	}
	if t := ast.OutputType(); !t.IsExactType(cel.StringType) && !t.IsExactType(cel.DynType) {
		return nil, &TemplateError{Field: field, Expr: expr, Err: fmt.Errorf("its result is a %s, not a string", t)}
	}
	p, err := e.env.Program(ast, cel.CostLimit(costLimit), cel.InterruptCheckFrequency(100))
	if err != nil {
		return nil, &TemplateError{Field: field, Expr: expr, Err: err}
	}
	e.programs[expr] = p
	return p, nil
}

// eval evaluates expr with vars to a string.
func (e *Evaluator) eval(field, expr string, vars map[string]any) (string, error) {
	p, err := e.compile(field, expr)
	if err != nil {
		return "", err
	}
	out, _, err := p.Eval(vars)
	if err != nil {
		return "", &TemplateError{Field: field, Expr: expr, Err: err}
	}
	s, ok := out.(types.String)
	if !ok {
		return "", &TemplateError{Field: field, Expr: expr, Err: fmt.Errorf("its result is a %s, not a string", out.Type())}
	}
	if len(s) > maxResult {
		return "", &TemplateError{Field: field, Expr: expr, Err: fmt.Errorf("its result is longer than %d bytes", maxResult)}
	}
	return string(s), nil
}

// IsTemplateError reports whether err is (or wraps) a TemplateError.
func IsTemplateError(err error) bool {
	var te *TemplateError
	return errors.As(err, &te)
}
