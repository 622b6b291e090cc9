import Foundation
import Testing
import TestSupport
@testable import DeciImage

@Suite struct JPEGTests {
    /// libjpeg-turbo here (system) and in Pillow's wheel may differ in version; with the same IDCT and
    /// upsampling settings they should agree, and the test allows ±1 per channel.
    @Test(arguments: ["photo420.jpg", "photo444_progressive.jpg", "gray.jpg", "cmyk.jpg", "oriented6.jpg"])
    func decodeMatchesPillowWithinOne(name: String) throws {
        let exp = try ImageExpectations.load()
        let c = try #require(exp.jpegs[name])
        let d = try ImageFile.read(path: fixturePath(name))
        #expect(d.format == .jpeg)
        #expect(d.image.width == c.width && d.image.height == c.height)
        let diff = byteDiff(d.image.pixels, bytes(fromHex: c.rgb))
        #expect(diff.maxDiff <= 1, "\(name): \(diff.count) bytes differ, max \(diff.maxDiff)")
        #expect((d.exifOrientation ?? 0) == c.orientation)
        let raw = try ImageFile.read(path: fixturePath(name), applyEXIFOrientation: false)
        #expect(raw.image.width == c.raw_width && raw.image.height == c.raw_height)
        #expect(byteDiff(raw.image.pixels, bytes(fromHex: c.raw_rgb)).maxDiff <= 1)
    }

    @Test func orientationSixRotatesClockwise() throws {
        let raw = try ImageFile.read(path: fixturePath("oriented6.jpg"), applyEXIFOrientation: false).image
        let up = try ImageFile.read(path: fixturePath("oriented6.jpg")).image
        #expect(up.width == raw.height && up.height == raw.width)
        // Rotating 90° clockwise puts the source's bottom-left pixel at the top-left.
        #expect(up[0, 0] == raw[0, raw.height - 1])
        #expect(up[up.width - 1, 0] == raw[0, 0])
    }

    @Test func truncatedJPEGIsAnError() throws {
        let full = try FileIO.readAll(path: fixturePath("photo420.jpg"))
        for cut in [3, 20, full.count / 2, full.count - 2] {
            #expect {
                _ = try ImageFile.decode(Array(full[0..<cut]), path: "cut.jpg")
            } throws: { error in
                guard let e = error as? ImageError, case .corrupt(let p, let f, _) = e else { return false }
                return p == "cut.jpg" && f == "JPEG"
            }
        }
    }
}

@Suite struct JPEGEncodeTests {
    /// A smooth gradient survives a round trip through the encoder and decoder closely at high
    /// quality, and a lower quality gives a smaller file.
    @Test func encodeRoundTripsAndQualityMatters() throws {
        let (w, h) = (48, 32)
        var px = [UInt8](repeating: 0, count: w * h * 3)
        for y in 0..<h { for x in 0..<w {
            let i = (y * w + x) * 3
            (px[i], px[i + 1], px[i + 2]) = (UInt8(x * 5), UInt8(y * 7), 128)
        } }
        let image = try RGBImage(width: w, height: h, pixels: px)
        let best = try ImageFile.encodeJPEG(image, quality: 95)
        let worst = try ImageFile.encodeJPEG(image, quality: 5)
        #expect(Array(best.prefix(3)) == [0xFF, 0xD8, 0xFF])
        #expect(worst.count < best.count)
        let back = try ImageFile.decode(best)
        #expect(back.format == .jpeg && back.image.width == w && back.image.height == h)
        #expect(byteDiff(back.image.pixels, px).maxDiff <= 12)
    }

    @Test func qualityOutsideRangeIsAnError() throws {
        let image = try RGBImage(width: 8, height: 8)
        for q in [0, 101] {
            #expect(throws: ImageError.self) { _ = try ImageFile.encodeJPEG(image, quality: q) }
        }
    }
}
