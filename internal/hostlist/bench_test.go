package hostlist

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

const benchExpr = "n[00001-50000],m[00001-50000]"

func BenchmarkExpand100k(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		names, err := Expand(benchExpr)
		if err != nil || len(names) != 100000 {
			b.Fatal(len(names), err)
		}
	}
}

// BenchmarkExpandMultiGroup: 100k names from three bracket groups.
func BenchmarkExpandMultiGroup100k(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		names, err := Expand("rack[01-10]-chassis[1-100]-node[001-100]")
		if err != nil || len(names) != 100000 {
			b.Fatal(len(names), err)
		}
	}
}

// BenchmarkCompress15k: 15,000 names in order (the common case of a list
// that slurmctld or Expand produced).
func BenchmarkCompress15k(b *testing.B) {
	names := make([]string, 0, 15000)
	for i := 1; i <= 10000; i++ {
		names = append(names, fmt.Sprintf("cpu%05d", i))
	}
	for i := 1; i <= 5000; i++ {
		names = append(names, fmt.Sprintf("gpu%04d", i))
	}
	benchCompress(b, names)
}

// BenchmarkCompress15kScattered: 15,000 shuffled names over 20 prefixes with
// gaps: almost nothing merges, the output has ~15,000 numbers.
func BenchmarkCompress15kScattered(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	names := make([]string, 0, 15000)
	for i := 0; i < 15000; i++ {
		names = append(names, fmt.Sprintf("p%02d-n%05d", i%20, 2*i+r.IntN(2)))
	}
	r.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	benchCompress(b, names)
}

func benchCompress(b *testing.B, names []string) {
	b.ReportAllocs()
	var out string
	for b.Loop() {
		out = Compress(names)
	}
	b.ReportMetric(float64(len(out)), "outbytes")
}

// BenchmarkExpandFunc100k streams the same 100k names without building the
// list, as a CLI printing them would.
func BenchmarkExpandFunc100k(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		err := ExpandFunc(benchExpr, 0, func(name []byte) error { n += len(name); return nil })
		if err != nil || n != 600000 {
			b.Fatal(n, err)
		}
	}
}

// BenchmarkCompressor15k: the same 15,000 in-order names added one by one.
func BenchmarkCompressor15k(b *testing.B) {
	names := make([]string, 0, 15000)
	for i := 1; i <= 15000; i++ {
		names = append(names, fmt.Sprintf("n%05d", i))
	}
	b.ReportAllocs()
	for b.Loop() {
		var c Compressor
		for _, n := range names {
			c.Add(n)
		}
		if c.String() != "n[00001-15000]" {
			b.Fatal(c.String())
		}
	}
}
