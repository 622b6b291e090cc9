import Foundation
import TestSupport
@testable import DeciRandom

/// Fixtures/random/torch_randn.json, written by tools/make_random_fixtures.py.
struct TorchRandnFixture: Decodable {
    struct Call: Decodable {
        var op: String
        var shape: [Int]
        var dtype: String
        var count: Int
        var fnv1a64: String
        var bits: [UInt32]?
        var samples: [[Int]]?
    }
    struct Case: Decodable {
        var seed: String
        var calls: [Call]
    }
    struct Section: Decodable {
        var capability: String
        var cases: [Case]
    }
    var torch: String
    var kernels: [String: Section]

    static func load() throws -> TorchRandnFixture {
        let data = try Data(contentsOf: FixturePaths.url("random/torch_randn.json"))
        return try JSONDecoder().decode(TorchRandnFixture.self, from: data)
    }
}

func fnv1a64(_ values: [Float]) -> String {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for v in values {
        let w = v.bitPattern
        for shift in stride(from: 0, to: 32, by: 8) {
            h ^= UInt64((w >> UInt32(shift)) & 0xff)
            h = h &* 0x0000_0100_0000_01b3
        }
    }
    let hex = String(h, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
}

/// Replays one fixture call on `source`; returns nil when every bit matches, else a description.
func replay(_ call: TorchRandnFixture.Call, on source: inout TorchRandomSource) -> String? {
    guard let dtype = TorchFloatType(rawValue: call.dtype) else { return "unknown dtype \(call.dtype)" }
    let got: [Float]
    switch call.op {
    case "randn": got = source.normal(shape: call.shape, dtype: dtype)
    case "rand":
        guard dtype == .float32 else { return "rand only in float32" }
        got = source.uniform(count: call.shape.reduce(1, *))
    default: return "unknown op \(call.op)"
    }
    guard got.count == call.count else { return "count \(got.count) != \(call.count)" }
    if let bits = call.bits {
        for (i, b) in bits.enumerated() where got[i].bitPattern != b {
            return "\(call.op)\(call.shape) \(call.dtype): index \(i) got \(got[i]) (0x\(String(got[i].bitPattern, radix: 16))), want \(Float(bitPattern: b)) (0x\(String(b, radix: 16)))"
        }
    }
    if let samples = call.samples {
        for s in samples where got[s[0]].bitPattern != UInt32(s[1]) {
            let want = Float(bitPattern: UInt32(s[1]))
            return "\(call.op)\(call.shape) \(call.dtype): index \(s[0]) got \(got[s[0]]), want \(want)"
        }
    }
    let sum = fnv1a64(got)
    if sum != call.fnv1a64 {
        return "\(call.op)\(call.shape) \(call.dtype): checksum \(sum) != \(call.fnv1a64) (sampled values matched)"
    }
    return nil
}
