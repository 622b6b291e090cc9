import Foundation

// Element-wise helpers over flat float32 samples. Each call rounds once per operation, so chaining
// them reproduces the rounding of the equivalent sequence of float32 torch operations.

@inline(__always)
func map1(_ a: [Float], _ f: (Float) -> Float) -> [Float] {
    [Float](unsafeUninitializedCapacity: a.count) { out, n in
        a.withUnsafeBufferPointer { pa in
            for i in 0..<pa.count { out[i] = f(pa[i]) }
        }
        n = a.count
    }
}

@inline(__always)
func map2(_ a: [Float], _ b: [Float], _ f: (Float, Float) -> Float) -> [Float] {
    precondition(a.count == b.count, "element-wise operands differ in size: \(a.count) vs \(b.count)")
    return [Float](unsafeUninitializedCapacity: a.count) { out, n in
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                for i in 0..<pa.count { out[i] = f(pa[i], pb[i]) }
            }
        }
        n = a.count
    }
}

@inline(__always)
func map3(_ a: [Float], _ b: [Float], _ c: [Float], _ f: (Float, Float, Float) -> Float) -> [Float] {
    precondition(a.count == b.count && a.count == c.count, "element-wise operands differ in size")
    return [Float](unsafeUninitializedCapacity: a.count) { out, n in
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeBufferPointer { pc in
                    for i in 0..<pa.count { out[i] = f(pa[i], pb[i], pc[i]) }
                }
            }
        }
        n = a.count
    }
}

/// Checks that an argument has the sample's size before any arithmetic touches it.
@inline(__always)
func checkSize(_ array: [Float], _ name: String, _ expected: Int) throws(SchedulerError) {
    if array.count != expected { throw .sizeMismatch(parameter: name, expected: expected, actual: array.count) }
}

/// sum of c_k * v_k evaluated left to right, each product and each sum rounded to float32, the way
/// a chain of scalar-times-tensor torch expressions evaluates (`a - c*v` is passed as `(-c, v)`,
/// which IEEE arithmetic rounds identically).
func combine(_ first: (Float, [Float]), _ rest: (Float, [Float])...) -> [Float] {
    var acc = map1(first.1) { first.0 * $0 }
    for (c, v) in rest {
        acc = map2(acc, v) { (a, x) in a + c * x }
    }
    return acc
}

// Scalar transcendentals, correctly rounded to float32 (evaluated in Double): the float32 results
// of libm and of torch's vectorised kernels can each be an ulp off, and differently so; the
// exactly rounded value is the reproducible choice (see the fixture generator's exact-rounding run).

@inline(__always) func exp32(_ x: Float) -> Float { Float(Foundation.exp(Double(x))) }
@inline(__always) func log32(_ x: Float) -> Float { Float(Foundation.log(Double(x))) }
@inline(__always) func expm132(_ x: Float) -> Float { Float(Foundation.expm1(Double(x))) }
