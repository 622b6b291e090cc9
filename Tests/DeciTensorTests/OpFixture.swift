import DeciTensor
import DeciWeights
import Foundation
import TestSupport

/// One `Fixtures/ops/<name>.safetensors` file: PyTorch-layout inputs and expected outputs.
struct OpFixture {
    let file: SafeTensorsFile

    init(_ name: String) throws {
        file = try SafeTensorsFile(url: FixturePaths.url("ops/\(name).safetensors"))
    }

    func floats(_ key: String) throws -> [Float] { try file.tensor(key).floats() }
    func shape(_ key: String) throws -> [Int] { try file.tensor(key).shape }
    func has(_ key: String) -> Bool { file.contains(key) }

    /// An NCHW fixture tensor as an NHWC engine tensor.
    func nhwc(_ key: String) throws -> Tensor {
        let s = try shape(key)
        return Tensor.fromNCHW(try floats(key), n: s[0], c: s[1], h: s[2], w: s[3])
    }

    func tensor(_ key: String) throws -> Tensor { Tensor(shape: try shape(key), data: try floats(key)) }
}

/// Stated tolerances (scale-relative: max|diff| / max|reference|).
enum Tolerance {
    /// float32 kernels against PyTorch float32.
    static let f32 = 1e-5
    /// bf16 kernels against PyTorch float32 on bf16-rounded inputs (same products, f32 sums).
    static let bf16VsRounded = 1e-5
    /// bf16 kernels against the full float32 result: input rounding alone costs ~2^-9 per value.
    static let bf16VsF32 = 2e-2
}

extension Tolerance {
    /// Winograd F(4x4, 3x3) in float32: its transforms scale values by up to 8x and back, so
    /// rounding runs a few times that of direct convolution (measured 2e-6 to 6e-6 scale-relative).
    static let winograd = 2e-5

    /// Native bf16 Winograd F(2x2, 3x3) (transformed tiles and weights rounded to bf16) against
    /// float32 references (PyTorch, or the direct float32 convolution): about 1.7x the rounding of
    /// a direct bf16 convolution, so the bf16-vs-f32 bound holds for it too.
    static let bf16Winograd = bf16VsF32

    /// bf16 attention against PyTorch with q, k, v and the probabilities rounded to bf16: a
    /// probability within float32 noise of a bf16 rounding boundary may round the other way.
    static let bf16Attention = 1e-3
}
