import Foundation
import TestSupport
@testable import DeciImage

/// Fixtures/image/expected.json, written by tools/make_image_fixtures.py.
struct ImageExpectations: Decodable {
    struct PNGCase: Decodable {
        var width: Int
        var height: Int
        var rgb: String
        var alpha: String?
        var text: [String: String]?
    }
    struct JPEGCase: Decodable {
        var width: Int
        var height: Int
        var rgb: String
        var raw_width: Int
        var raw_height: Int
        var raw_rgb: String
        var orientation: Int
    }
    struct Postprocess: Decodable {
        var x_bits: [UInt32]
        var bytes: [UInt8]
    }
    var pngs: [String: PNGCase]
    var jpegs: [String: JPEGCase]
    var resize: [String: String]
    var luma: String
    var vae_preprocess_24x16: [UInt32]
    var mask_preprocess_24x16: [Int]
    var postprocess: Postprocess

    static func load() throws -> ImageExpectations {
        let data = try Data(contentsOf: FixturePaths.url("image/expected.json"))
        return try JSONDecoder().decode(ImageExpectations.self, from: data)
    }
}

func fixturePath(_ name: String) -> String { FixturePaths.url("image/" + name).path }

func bytes(fromHex hex: String) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(hex.utf8.count / 2)
    var hi: UInt8? = nil
    for c in hex.utf8 {
        let v: UInt8 = c <= 57 ? c - 48 : (c | 0x20) - 87
        if let h = hi { out.append(h << 4 | v); hi = nil } else { hi = v }
    }
    return out
}

/// A fresh temporary directory for one test, removed by the caller.
func makeTempDir() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("deciimage-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Largest per-byte difference and how many bytes differ.
func byteDiff(_ a: [UInt8], _ b: [UInt8]) -> (maxDiff: Int, count: Int) {
    guard a.count == b.count else { return (Int.max, Int.max) }
    var m = 0, n = 0
    for i in 0..<a.count {
        let d = abs(Int(a[i]) - Int(b[i]))
        if d > 0 { n += 1; m = max(m, d) }
    }
    return (m, n)
}
