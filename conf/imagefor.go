package conf

import (
	"fmt"
	"slices"
	"strings"
)

// maxFeatureSets caps the alternatives a feature expression expands to;
// a larger one is not mapped (the default image).
const maxFeatureSets = 64

// ImageFor returns the name of g's image ("" = the default,
// template.image) that a node of g boots for a job whose feature
// expression (sbatch -C, the resume file's "features") is features, and,
// when the expression could not be mapped to an image, why (then the name
// is "": the default; the caller logs it). A user never chooses a
// reference: only the admin's g.Images can come back.
//
// It mirrors what slurmctld does before the resume (node_features/helpers,
// job_xlate): the expression is expanded into its alternatives (AND binds
// tighter than OR; ',' is AND; one level of parentheses or more), and the
// first alternative whose every feature the group's nodes have (their
// template.features and image names) decides: its one image name, or the
// default when it names none. Slurm sets no changeable feature for an
// expression with '[', ']' or '*' (the plugin clears it), so neither does
// this: the default. An alternative naming two images cannot pass
// MutuallyExclusive at submit; if met, the default. It does not block.
func (g *Group) ImageFor(features string) (name, why string) {
	if features == "" || len(g.Images) == 0 {
		return "", ""
	}
	if strings.ContainsAny(features, "[]*") {
		return "", fmt.Sprintf("feature expression %q uses [ ] or *, for which Slurm sets no changeable feature", features)
	}
	sets, err := featureSets(features)
	if err != nil {
		return "", fmt.Sprintf("feature expression %q: %v", features, err)
	}
	has := func(f string) bool {
		if slices.Contains(g.Template.Features, f) {
			return true
		}
		_, ok := g.ImageRef(f)
		return ok
	}
	for _, set := range sets {
		if !allOf(set, has) {
			continue
		}
		var imgs []string
		for _, f := range set {
			if _, ok := g.ImageRef(f); ok && !slices.Contains(imgs, f) {
				imgs = append(imgs, f)
			}
		}
		switch len(imgs) {
		case 0:
			return "", ""
		case 1:
			return imgs[0], ""
		default:
			return "", fmt.Sprintf("feature expression %q asks for several images at once (%s)", features, strings.Join(imgs, ","))
		}
	}
	return "", fmt.Sprintf("feature expression %q has no alternative the nodes of group %s have", features, g.Name)
}

func allOf(set []string, ok func(string) bool) bool {
	for _, f := range set {
		if !ok(f) {
			return false
		}
	}
	return true
}

// featureSets expands a Slurm feature expression (names, '&' and ',' for
// AND, '|' for OR, parentheses) into its alternatives, in order, each the
// features that must all hold. It does not block.
func featureSets(expr string) ([][]string, error) {
	p := &featParser{s: expr}
	sets, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.i < len(p.s) {
		return nil, fmt.Errorf("unexpected %q at %d", p.s[p.i], p.i)
	}
	return sets, nil
}

type featParser struct {
	s string
	i int
}

func (p *featParser) or() ([][]string, error) {
	sets, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.i < len(p.s) && p.s[p.i] == '|' {
		p.i++
		more, err := p.and()
		if err != nil {
			return nil, err
		}
		sets = append(sets, more...)
		if len(sets) > maxFeatureSets {
			return nil, fmt.Errorf("more than %d alternatives", maxFeatureSets)
		}
	}
	return sets, nil
}

func (p *featParser) and() ([][]string, error) {
	sets, err := p.factor()
	if err != nil {
		return nil, err
	}
	for p.i < len(p.s) && (p.s[p.i] == '&' || p.s[p.i] == ',') {
		p.i++
		right, err := p.factor()
		if err != nil {
			return nil, err
		}
		if len(sets)*len(right) > maxFeatureSets {
			return nil, fmt.Errorf("more than %d alternatives", maxFeatureSets)
		}
		var prod [][]string
		for _, a := range sets {
			for _, b := range right {
				prod = append(prod, append(slices.Clip(a), b...))
			}
		}
		sets = prod
	}
	return sets, nil
}

func (p *featParser) factor() ([][]string, error) {
	if p.i >= len(p.s) {
		return nil, fmt.Errorf("ends where a feature is expected")
	}
	if p.s[p.i] == '(' {
		p.i++
		sets, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.i >= len(p.s) || p.s[p.i] != ')' {
			return nil, fmt.Errorf("'(' without ')'")
		}
		p.i++
		return sets, nil
	}
	start := p.i
	for p.i < len(p.s) && isFeatureChar(p.s[p.i]) {
		p.i++
	}
	if p.i == start {
		return nil, fmt.Errorf("unexpected %q at %d", p.s[p.i], p.i)
	}
	return [][]string{{p.s[start:p.i]}}, nil
}

// isFeatureChar: a character of a feature name (conf's featureRe).
func isFeatureChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '.' || c == ':' || c == '-' || c == '='
}
