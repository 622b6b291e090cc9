import Foundation
import Testing
import TestSupport
@testable import DeciImage

@Suite struct ConversionTests {
    @Test func postprocessMatchesDiffusersOnRoundingEdges() throws {
        let exp = try ImageExpectations.load()
        let xs = exp.postprocess.x_bits.map { Float(bitPattern: $0) }
        #expect(xs.count > 1200)
        let img = try RGBImage(denormalizing: xs, width: 1, height: xs.count / 3)
        var bad: [String] = []
        for i in 0..<xs.count where img.pixels[i] != exp.postprocess.bytes[i] {
            bad.append("x=\(xs[i]) got \(img.pixels[i]) want \(exp.postprocess.bytes[i])")
        }
        #expect(bad.isEmpty, "\(bad.count) differ: \(bad.prefix(5))")
        // Ties go to even as numpy rounds: 0.5/255 -> 0, 1.5/255 -> 2.
        #expect(RGBImage.byte(fromNormalized: .nan) == 0)
        #expect(RGBImage.byte(fromNormalized: -1) == 0 && RGBImage.byte(fromNormalized: 1) == 255)
        #expect(RGBImage.byte(fromNormalized: 7) == 255 && RGBImage.byte(fromNormalized: -7) == 0)
    }

    @Test func batchSplitsNHWC() throws {
        let a = [Float](repeating: -1, count: 2 * 3 * 3), b = [Float](repeating: 1, count: 2 * 3 * 3)
        let imgs = try RGBImage.batch(denormalizing: a + b, count: 2, width: 3, height: 2)
        #expect(imgs.count == 2 && imgs[0].pixels.allSatisfy { $0 == 0 } && imgs[1].pixels.allSatisfy { $0 == 255 })
        #expect(throws: ImageError.self) { _ = try RGBImage.batch(denormalizing: a, count: 2, width: 3, height: 2) }
    }

    @Test func bytesToFloatsAndBackAreExact() throws {
        let all = try RGBImage(width: 256, height: 1, pixels: (0..<768).map { UInt8($0 / 3) })
        let floats = all.normalizedFloats()
        #expect(floats.first == -1 && floats.last == 1)
        #expect(try RGBImage(denormalizing: floats, width: 256, height: 1) == all)
    }

    @Test func vaePreprocessMatchesDiffusers() throws {
        let exp = try ImageExpectations.load()
        let src = try ImageFile.read(path: fixturePath("resize_source.png")).image
        let prepared = try src.preprocessedForVAE(width: 24, height: 16)
        #expect(prepared.width == 24 && prepared.height == 16)
        let got = prepared.values
        let want = exp.vae_preprocess_24x16.map { Float(bitPattern: $0) }
        #expect(got.count == want.count)
        let mismatches = zip(got, want).filter { $0.bitPattern != $1.bitPattern }.count
        #expect(mismatches == 0, "\(mismatches) of \(want.count) differ: \(compare(got, want))")
    }

    @Test func maskPreprocessMatchesDiffusers() throws {
        let exp = try ImageExpectations.load()
        let src = try ImageFile.read(path: fixturePath("resize_source.png")).image
        let got = try src.preprocessedMask(width: 27, height: 17).values  // rounded down to 24x16
        #expect(got == exp.mask_preprocess_24x16.map { Float($0) })
        #expect(got.contains(0) && got.contains(1))
    }

    @Test func vaeSizeRoundsDownLikeDiffusers() throws {
        let img = try RGBImage(width: 37, height: 23)
        #expect(try img.vaeSize() == (32, 16))
        #expect(try img.vaeSize(width: 64, height: 70) == (64, 64))
        #expect(try img.preprocessedForVAE().values.count == 32 * 16 * 3)
        #expect(throws: ImageError.self) { _ = try RGBImage(width: 7, height: 30).vaeSize() }
    }

    @Test func lumaMatchesPillow() throws {
        let exp = try ImageExpectations.load()
        let src = try ImageFile.read(path: fixturePath("resize_source.png")).image
        #expect(src.luminance() == bytes(fromHex: exp.luma))
    }

    @Test func lanczosResizeMatchesPillowExactly() throws {
        let exp = try ImageExpectations.load()
        let src = try ImageFile.read(path: fixturePath("resize_source.png")).image
        #expect(exp.resize.count == 7)
        for (size, hex) in exp.resize {
            let wh = size.split(separator: "x").compactMap { Int($0) }
            let r = try src.resizedLanczos(width: wh[0], height: wh[1])
            #expect(r.width == wh[0] && r.height == wh[1])
            let diff = byteDiff(r.pixels, bytes(fromHex: hex))
            #expect(diff.count == 0, "\(size): \(diff.count) bytes differ, max \(diff.maxDiff)")
        }
        #expect(try src.resizedLanczos(width: src.width, height: src.height) == src)
        #expect(throws: ImageError.self) { _ = try src.resizedLanczos(width: 0, height: 5) }
    }
}
