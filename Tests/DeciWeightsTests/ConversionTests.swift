import DeciWeights
import Dispatch
import Foundation
import Testing
import TestSupport

/// Conversions compared bit for bit with what torch produced (Fixtures/weights/conversions.safetensors).
@Suite struct ConversionTests {
    let file: SafeTensorsFile

    init() throws { file = try SafeTensorsFile(path: fixture("conversions.safetensors")) }

    private func rawUInt16(_ key: String) throws -> [UInt16] {
        let t = try file.tensor(key)
        #expect(t.dtype.bitSize == 16)
        return t.withRawBytes { raw in (0..<t.elementCount).map { raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self) } }
    }

    private func rawUInt32(_ key: String) throws -> [UInt32] {
        let t = try file.tensor(key)
        #expect(t.dtype == .F32)
        return t.withRawBytes { raw in (0..<t.elementCount).map { raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self) } }
    }

    /// Bit equality, except that where torch produced a NaN only NaN-ness is required (its NaN
    /// payloads differ between its scalar and vector code paths).
    private func expectSameBits<T: FixedWidthInteger>(_ got: [T], _ want: [T], isNaN: (T) -> Bool, _ what: String,
                                                      sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(got.count == want.count, sourceLocation: sourceLocation)
        var mismatches: [String] = []
        for i in 0..<min(got.count, want.count) {
            let ok = isNaN(want[i]) ? isNaN(got[i]) : got[i] == want[i]
            if !ok { mismatches.append("[\(i)] got 0x\(String(got[i], radix: 16)) want 0x\(String(want[i], radix: 16))") }
        }
        let count = mismatches.count
        #expect(count == 0, "\(what): first mismatches: \(mismatches.prefix(5).joined(separator: ", "))",
                sourceLocation: sourceLocation)
    }

    private static func f32IsNaN(_ u: UInt32) -> Bool { u & 0x7FFF_FFFF > 0x7F80_0000 }
    private static func b16IsNaN(_ u: UInt16) -> Bool { u & 0x7FFF > 0x7F80 }
    private static func h16IsNaN(_ u: UInt16) -> Bool { u & 0x7FFF > 0x7C00 }

    @Test func f16ToF32MatchesTorch() throws {
        let got = try file.tensor("f16_to_f32.input").floats().map(\.bitPattern)
        let want = try rawUInt32("f16_to_f32.expected")
        #expect(got.count == 1022)
        expectSameBits(got, want, isNaN: Self.f32IsNaN, "f16 -> f32")
        // non-quiet NaN payloads are kept exactly (0x7C01 -> 0x7F802000)
        let input = try rawUInt16("f16_to_f32.input")
        if let i = input.firstIndex(of: 0x7C01) { #expect(got[i] == 0x7F80_2000) }
    }

    @Test func bf16ToF32MatchesTorch() throws {
        let got = try file.tensor("bf16_to_f32.input").floats().map(\.bitPattern)
        expectSameBits(got, try rawUInt32("bf16_to_f32.expected"), isNaN: Self.f32IsNaN, "bf16 -> f32")
        // exact: every bf16 value is the top half of its f32
        #expect(got == (try rawUInt16("bf16_to_f32.input")).map { UInt32($0) << 16 })
    }

    @Test func f32ToBF16MatchesTorchRounding() throws {
        let input = try file.tensor("f32_to_bf16.input")
        let got = try input.bfloat16Bits()
        let want = try rawUInt16("f32_to_bf16.expected")
        expectSameBits(got, want, isNaN: Self.b16IsNaN, "f32 -> bf16")
        // the edge cases by name (first entries of the fixture, in the order the script lists them)
        let bits = try rawUInt32("f32_to_bf16.input")
        func at(_ b: UInt32) -> UInt16? { bits.firstIndex(of: b).map { got[$0] } }
        #expect(at(0x3F80_8000) == 0x3F80)  // tie, even below
        #expect(at(0x3F81_8000) == 0x3F82)  // tie, even above
        #expect(at(0xBF80_8000) == 0xBF80)
        #expect(at(0x3F80_8001) == 0x3F81)
        #expect(at(0x3F80_7FFF) == 0x3F80)
        #expect(at(0x7F7F_FFFF) == 0x7F80)  // f32 max rounds to inf
        #expect(at(0x7F7F_8000) == 0x7F80)  // tie at the top rounds to even = inf
        #expect(at(0x7F7F_7FFF) == 0x7F7F)
        #expect(at(0x7F80_0000) == 0x7F80 && at(0xFF80_0000) == 0xFF80)
        #expect(at(0x0000_8000) == 0x0000 && at(0x0001_8000) == 0x0002 && at(0x007F_FFFF) == 0x0080)
        for nan: UInt32 in [0x7FC0_0000, 0xFFC0_0000, 0x7F80_0001, 0x7FBF_FFFF, 0x7F80_FFFF, 0xFFFF_FFFF] {
            let b = try #require(at(nan))
            #expect(Self.b16IsNaN(b), "NaN 0x\(String(nan, radix: 16)) became 0x\(String(b, radix: 16))")
            #expect(b & 0x8000 == UInt16(nan >> 16) & 0x8000, "sign kept")
        }
    }

    @Test func f16ToBF16MatchesTorch() throws {
        let got = try file.tensor("f16_to_f32.input").bfloat16Bits()
        expectSameBits(got, try rawUInt16("f16_to_bf16.expected"), isNaN: Self.b16IsNaN, "f16 -> bf16")
    }

    @Test func f64ConversionsMatchTorch() throws {
        let input = try file.tensor("f64_to_f32.input")
        expectSameBits(try input.floats().map(\.bitPattern), try rawUInt32("f64_to_f32.expected"), isNaN: Self.f32IsNaN, "f64 -> f32")
        expectSameBits(try input.bfloat16Bits(), try rawUInt16("f64_to_bf16.expected"), isNaN: Self.b16IsNaN, "f64 -> bf16")
    }

    @Test func f32ToF16MatchesTorch() throws {
        // used by the writer; the engine itself never produces f16
        let input = try file.tensor("f32_to_bf16.input").floats()
        let got = input.map(WeightConversion.halfBits(from:))
        expectSameBits(got, try rawUInt16("f32_to_f16.expected"), isNaN: Self.h16IsNaN, "f32 -> f16")
    }

    @Test func f16ToF32ExhaustiveAgainstFloat16() throws {
        #if !(os(macOS) && arch(x86_64))
        var mismatches = 0
        for h in 0...UInt16.max {
            let mine = WeightConversion.float(fromHalfBits: h)
            let swift = Float(Float16(bitPattern: h))
            if mine.isNaN ? !swift.isNaN : mine.bitPattern != swift.bitPattern { mismatches += 1 }
        }
        #expect(mismatches == 0)
        #endif
    }

    @Test func f32ToBF16ScalarRoundingRule() {
        // exhaustive over the 16 dropped bits for one odd and one even upper half
        for upper: UInt32 in [0x3F81, 0x3F80, 0xC2AB] {
            for low: UInt32 in 0...0xFFFF {
                let x = Float(bitPattern: upper << 16 | low)
                let got = WeightConversion.bfloat16Bits(from: x)
                let roundUp = low > 0x8000 || (low == 0x8000 && upper & 1 == 1)
                let want = UInt16(upper + (roundUp ? 1 : 0))
                if got != want { Issue.record("0x\(String(x.bitPattern, radix: 16)) -> 0x\(String(got, radix: 16)), want 0x\(String(want, radix: 16))"); return }
            }
        }
    }

    @Test func largeConversionsUseEveryChunkCorrectly() throws {
        // Big enough for the multi-threaded path (several 1M-element chunks plus a ragged tail),
        // compared element-wise with the scalar conversion; written and read through a real file.
        let n = 3 * (1 << 20) + 12345
        var halves = [UInt16](repeating: 0, count: n)
        var state: UInt32 = 0x1234_5678
        for i in 0..<n {
            state = state &* 1_664_525 &+ 1_013_904_223
            halves[i] = UInt16(truncatingIfNeeded: state >> 11)
        }
        let dir = TempDir()
        defer { dir.remove() }
        var w = SafeTensorsWriter()
        try w.add("h", dtype: .F16, shape: [n], bytes: leBytes(halves))
        let floats = halves.map(WeightConversion.float(fromHalfBits:))
        try w.add("f", floats: floats, shape: [n])
        let p = dir.file("big.safetensors")
        try w.write(to: p)
        let file = try SafeTensorsFile(path: p)
        let got = try file.tensor("h").floats()
        var bad = 0
        for i in 0..<n where got[i].bitPattern != floats[i].bitPattern { bad += 1 }
        #expect(bad == 0)
        let bf = try file.tensor("f").bfloat16Bits()
        var badB = 0
        for i in 0..<n where bf[i] != WeightConversion.bfloat16Bits(from: floats[i]) { badB += 1 }
        #expect(badB == 0)
        let fromHalf = try file.tensor("h").bfloat16Bits()
        #expect(fromHalf == bf)
    }

    /// Opt-in (DECI_FULL=1) throughput figure for a UNet-sized conversion, with a correctness check
    /// on a sample. Prints GB/s of source read; not a timed assertion.
    @Test(.enabled(if: FixturePaths.fullSizeEnabled)) func largeTensorThroughput() throws {
        let n = 200_000_000  // 400 MB of f16, about half of the DeciDiffusion UNet
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.file("big.safetensors")
        // write header + pattern directly (the writer would hold a second copy in memory)
        let header = Array("{\"h\":{\"dtype\":\"F16\",\"shape\":[\(n)],\"data_offsets\":[0,\(2 * n)]}}".utf8)
        let padded = header + [UInt8](repeating: 0x20, count: (8 - header.count % 8) % 8)
        var data = leBytes([UInt64(padded.count)]) + padded
        data.reserveCapacity(data.count + 2 * n)
        for i in 0..<n { let h = UInt16(truncatingIfNeeded: i &* 40503); data.append(UInt8(h & 0xFF)); data.append(UInt8(h >> 8)) }
        _ = FileManager.default.createFile(atPath: path, contents: Data(data))
        data = []
        let t = try SafeTensorsFile(path: path).tensor("h")
        let out = UnsafeMutablePointer<Float>.allocate(capacity: n)
        defer { out.deallocate() }
        let bits = UnsafeMutablePointer<UInt16>.allocate(capacity: n)
        defer { bits.deallocate() }
        try t.convertFloats(into: out)  // first touch: page faults and reads
        var best = Double.infinity, bestB = Double.infinity
        for _ in 0..<3 {
            let t0 = DispatchTime.now().uptimeNanoseconds
            try t.convertFloats(into: out)
            let t1 = DispatchTime.now().uptimeNanoseconds
            try t.convertBFloat16Bits(into: bits)
            let t2 = DispatchTime.now().uptimeNanoseconds
            best = min(best, Double(t1 - t0) / 1e9)
            bestB = min(bestB, Double(t2 - t1) / 1e9)
        }
        print("f16 -> f32: \(n) elements in \(best) s = \(Double(2 * n) / best / 1e9) GB/s read; f16 -> bf16: \(bestB) s")
        for i in stride(from: 0, to: n, by: 9_999_991) {
            let h = UInt16(truncatingIfNeeded: i &* 40503)
            let f = WeightConversion.float(fromHalfBits: h)
            #expect(out[i].bitPattern == f.bitPattern || (out[i].isNaN && f.isNaN))
            #expect(bits[i] == WeightConversion.bfloat16Bits(from: f) || (f.isNaN && bits[i] & 0x7FFF > 0x7F80))
        }
    }
}
