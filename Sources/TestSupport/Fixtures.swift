import Foundation

/// Locates committed fixtures: `Fixtures/` at the repository root, found from this file's path so
/// tests need no resource bundles.
public enum FixturePaths {
    public static let root: URL = {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()  // TestSupport
            .deletingLastPathComponent()  // Sources
            .deletingLastPathComponent()  // repo root
            .appendingPathComponent("Fixtures")
    }()

    public static func url(_ relative: String) -> URL { root.appendingPathComponent(relative) }

    /// Opt-in full-size checks run only when `DECI_FULL=1`.
    public static var fullSizeEnabled: Bool { ProcessInfo.processInfo.environment["DECI_FULL"] == "1" }
}

/// Outcome of comparing a computed array with a reference; its description says where they differ.
public struct Comparison: CustomStringConvertible, Sendable {
    public var count: Int
    public var maxAbsDiff: Double
    public var maxAbsRef: Double
    public var worstIndex: Int
    public var relative: Double  // maxAbsDiff / max|reference|
    public var firstPairs: [(Float, Float)]
    public var shapeMismatch: String?

    public var description: String {
        if let s = shapeMismatch { return "shape mismatch: \(s)" }
        let pairs = firstPairs.map { "(\($0.0), \($0.1))" }.joined(separator: " ")
        return "n=\(count) max|diff|=\(maxAbsDiff) at \(worstIndex), max|ref|=\(maxAbsRef), rel=\(relative); first (got, want): \(pairs)"
    }

    public func within(relative tol: Double) -> Bool { shapeMismatch == nil && relative <= tol && !relative.isNaN }
}

/// Compares `actual` with `expected` using the scale-relative metric max|a-e| / max|e| that the
/// project's tolerances are stated in.
public func compare(_ actual: [Float], _ expected: [Float]) -> Comparison {
    guard actual.count == expected.count else {
        return Comparison(count: 0, maxAbsDiff: .nan, maxAbsRef: .nan, worstIndex: -1, relative: .nan,
                          firstPairs: [], shapeMismatch: "got \(actual.count) elements, want \(expected.count)")
    }
    var maxDiff = 0.0, maxRef = 0.0, worst = 0
    for i in 0..<actual.count {
        let d = abs(Double(actual[i]) - Double(expected[i]))
        if d > maxDiff || d.isNaN { maxDiff = d; worst = i; if d.isNaN { break } }
        maxRef = max(maxRef, abs(Double(expected[i])))
    }
    let pairs = (0..<min(4, actual.count)).map { (actual[$0], expected[$0]) }
    return Comparison(count: actual.count, maxAbsDiff: maxDiff, maxAbsRef: maxRef, worstIndex: worst,
                      relative: maxRef > 0 ? maxDiff / maxRef : maxDiff, firstPairs: pairs, shapeMismatch: nil)
}

/// A small deterministic generator for test inputs that need no reference values (SplitMix64).
public struct SplitMix: RandomNumberGenerator, Sendable {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    public mutating func uniform() -> Float { Float(next() >> 40) / Float(1 << 23) - 1 }
}
