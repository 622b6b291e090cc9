#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// Box-Muller on blocks of 16 uniforms as PyTorch's CPU `normal_` does for float tensors with at
// least 16 elements (aten/src/ATen/native/cpu/DistributionTemplates.h, `NormalFill16`): lanes
// j and j+8 form one pair, u1 = 1 - data[j], u2 = data[j+8].
//
// Two variants exist in PyTorch. On x86-64 with AVX2 (also on AVX-512 machines: `normal_stub` is
// deliberately not dispatched to AVX-512) the block goes through `log256_ps`/`sincos256_ps` from
// avx_mathfun.h, cephes-style float polynomials. Elsewhere (ATEN_CPU_CAPABILITY=default, ARM) it
// calls the C library's logf/cosf/sinf. Both are emulated lane by lane here with the same float
// operations in the same order, so results are bit-identical, not just close.

/// Which of PyTorch's CPU normal kernels to reproduce.
public enum TorchNormalKernel: String, Sendable, CaseIterable {
    /// x86-64 CPUs with AVX2, including AVX-512 machines: what PyTorch uses on almost every PC and
    /// server. The default.
    case avx2
    /// PyTorch's portable kernel (C library logf/cosf/sinf): used on ARM builds and with
    /// `ATEN_CPU_CAPABILITY=default`. Bit-exactness then also depends on this machine's libm
    /// matching the one PyTorch ran with.
    case scalar
}

enum BoxMuller16 {
    // Constants are the float roundings of the double literals avx_mathfun.h uses; going through
    // Double first reproduces C's double-literal -> float conversion exactly.
    static let one: Float = 1
    static let half: Float = 0.5
    static let minNormPos = Float(bitPattern: 0x0080_0000)
    static let sqrtHalf = Float(0.707106781186547524 as Double)
    static let logP0 = Float(7.0376836292E-2 as Double)
    static let logP1 = Float(-1.1514610310E-1 as Double)
    static let logP2 = Float(1.1676998740E-1 as Double)
    static let logP3 = Float(-1.2420140846E-1 as Double)
    static let logP4 = Float(1.4249322787E-1 as Double)
    static let logP5 = Float(-1.6668057665E-1 as Double)
    static let logP6 = Float(2.0000714765E-1 as Double)
    static let logP7 = Float(-2.4999993993E-1 as Double)
    static let logP8 = Float(3.3333331174E-1 as Double)
    static let logQ1 = Float(-2.12194440e-4 as Double)
    static let logQ2 = Float(0.693359375 as Double)

    static let minusDP1 = Float(-0.78515625 as Double)
    static let minusDP2 = Float(-2.4187564849853515625e-4 as Double)
    static let minusDP3 = Float(-3.77489497744594108e-8 as Double)
    static let sinP0 = Float(-1.9515295891E-4 as Double)
    static let sinP1 = Float(8.3321608736E-3 as Double)
    static let sinP2 = Float(-1.6666654611E-1 as Double)
    static let cosP0 = Float(2.443315711809948E-005 as Double)
    static let cosP1 = Float(-1.388731625493765E-003 as Double)
    static let cosP2 = Float(4.166664568298827E-002 as Double)
    static let fourOverPi = Float(1.27323954473516 as Double)
    static let twoPi = Float(2.0 * Double.pi)

    @inline(__always)
    static func fma(_ a: Float, _ b: Float, _ c: Float) -> Float { c.addingProduct(a, b) }

    /// Natural log as avx_mathfun's `log256_ps` computes it for one lane.
    @inline(__always)
    static func cephesLog(_ input: Float) -> Float {
        let invalid = input <= 0
        var x = input > minNormPos ? input : minNormPos
        let bits = x.bitPattern
        var e = Float(Int32(bitPattern: bits >> 23) &- 0x7f)
        e = e + one
        x = Float(bitPattern: (bits & ~UInt32(0x7f80_0000)) | half.bitPattern)
        let below = x < sqrtHalf
        let tmp: Float = below ? x : 0
        x = x - one
        e = e - (below ? one : 0)
        x = x + tmp
        let z = x * x
        var y = logP0
        y = fma(y, x, logP1)
        y = fma(y, x, logP2)
        y = fma(y, x, logP3)
        y = fma(y, x, logP4)
        y = fma(y, x, logP5)
        y = fma(y, x, logP6)
        y = fma(y, x, logP7)
        y = fma(y, x, logP8)
        y = y * x
        y = fma(y, z, e * logQ1)
        y = fma(-z, half, y)
        x = x + y
        x = fma(e, logQ2, x)
        return invalid ? .nan : x
    }

    /// Sine and cosine as avx_mathfun's `sincos256_ps` computes them for one lane (arguments here
    /// lie in [0, 2π), far inside the range where its reduction is exact enough).
    @inline(__always)
    static func cephesSinCos(_ input: Float) -> (sin: Float, cos: Float) {
        var signSin = input.bitPattern & 0x8000_0000
        var x = Float(bitPattern: input.bitPattern & 0x7fff_ffff)
        var y = x * fourOverPi
        var j = Int32(y)
        j = (j &+ 1) & ~1
        y = Float(j)
        let swapSignSin = UInt32(bitPattern: j & 4) << 29
        let sinPolyIsSine = (j & 2) == 0
        x = fma(y, minusDP1, x)
        x = fma(y, minusDP2, x)
        x = fma(y, minusDP3, x)
        let signCos = UInt32(bitPattern: ~(j &- 2) & 4) << 29
        signSin ^= swapSignSin

        let z = x * x
        var yc = cosP0
        yc = fma(yc, z, cosP1)
        yc = fma(yc, z, cosP2)
        yc = yc * z
        yc = fma(yc, z, -(z * half))
        yc = yc + one

        var ys = sinP0
        ys = fma(ys, z, sinP1)
        ys = fma(ys, z, sinP2)
        ys = ys * z
        ys = fma(ys, x, x)

        // The vector code selects with masks and then subtracts/adds the unselected zeros; the
        // additions of +0 matter for the sign of zero, so they are kept.
        let ysin2: Float = sinPolyIsSine ? ys : 0
        let ysin1: Float = sinPolyIsSine ? 0 : yc
        let restSin = ys - ysin2
        let restCos = yc - ysin1
        let s = ysin1 + ysin2
        let c = restCos + restSin
        return (Float(bitPattern: s.bitPattern ^ signSin), Float(bitPattern: c.bitPattern ^ signCos))
    }

    /// Turns 16 uniforms in [0, 1) into 16 standard normals in place (mean 0, std 1).
    @inline(__always)
    static func transform(_ d: UnsafeMutablePointer<Float>, kernel: TorchNormalKernel) {
        switch kernel {
        case .avx2:
            for j in 0..<8 {
                let u1 = one - d[j]
                let u2 = d[j + 8]
                let radius = (Float(-2) * cephesLog(u1)).squareRoot()
                let theta = twoPi * u2
                let (s, c) = cephesSinCos(theta)
                // PyTorch finishes with fma(n, std, mean); with std 1, mean 0 that is n + 0.
                d[j] = radius * c + 0
                d[j + 8] = radius * s + 0
            }
        case .scalar:
            for j in 0..<8 {
                let u1 = one - d[j]
                let u2 = d[j + 8]
                let radius = (Float(-2) * logf(u1)).squareRoot()
                // 2.0f * pi<double> * u2 is evaluated in double, then stored as float.
                let theta = Float(2.0 * Double.pi * Double(u2))
                d[j] = radius * cosf(theta) + 0
                d[j + 8] = radius * sinf(theta) + 0
            }
        }
    }
}
