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
