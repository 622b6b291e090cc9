import DeciImage
import XCTest

@testable import DeciServer

/// Mask preparation and compositing as A1111 does it.
final class A1111InpaintingTests: XCTestCase {
    func gray(_ w: Int, _ h: Int, _ f: (Int, Int) -> UInt8) -> GrayImage {
        GrayImage(width: w, height: h, pixels: (0..<(w * h)).map { f($0 % w, $0 / w) })
    }

    func testMaskFromAlphaOrLuminance() throws {
        let rgb = try RGBImage(width: 2, height: 1, pixels: [255, 255, 255, 0, 0, 0])
        XCTAssertEqual(GrayImage.mask(image: rgb, alpha: [255, 255], round: true).pixels, [255, 0], "opaque alpha: luminance")
        XCTAssertEqual(GrayImage.mask(image: rgb, alpha: [100, 200], round: true).pixels, [0, 255], "alpha > 128 is repaint")
        XCTAssertEqual(GrayImage.mask(image: rgb, alpha: [100, 200], round: false).pixels, [100, 200])
        let red = try RGBImage(width: 1, height: 1, pixels: [255, 0, 0])
        XCTAssertEqual(GrayImage.mask(image: red, alpha: nil, round: true).pixels, [76], "ITU-R 601-2 luma, as Pillow's L")
    }

    func testGaussianBlurMatchesCV2sKernel() {
        // σ = 1: 7 taps (2·int(2.5+0.5)+1 = 7); an impulse spreads into the normalised Gaussian.
        let impulse = gray(15, 1) { x, _ in x == 7 ? 255 : 0 }
        let b = impulse.gaussianBlurred(sigmaX: 1, sigmaY: 0)
        let k = (-3...3).map { exp(-Double($0 * $0) / 2) }
        let total = k.reduce(0, +)
        for (i, w) in k.enumerated() { XCTAssertLessThanOrEqual(abs(Int(b.pixels[4 + i]) - Int((255 * w / total).rounded())), 1, "tap \(i)") }
        XCTAssertEqual(b.pixels[3], 0)
        XCTAssertEqual(b.pixels[11], 0)
        // A constant image stays constant (the kernel sums to one, borders reflect).
        let flat = gray(9, 9) { _, _ in 200 }.gaussianBlurred(sigmaX: 4, sigmaY: 4)
        XCTAssertEqual(Set(flat.pixels), [200])
    }

    func testCropRegionAndAspectExpansion() {
        let m = gray(100, 80) { x, y in (30..<40).contains(x) && (20..<60).contains(y) ? 255 : 0 }
        let r = m.cropRegion(padding: 5)
        XCTAssertTrue(r.map { $0 == (25, 15, 45, 65) } ?? false, "\(String(describing: r))")
        XCTAssertNil(gray(4, 4) { _, _ in 0 }.cropRegion(padding: 3))
        // A tall 20x50 crop grown to the 1:1 processing aspect: wider, centred, inside the image.
        let e = A1111Inpainting.expandCropRegion((25, 15, 45, 65), width: 64, height: 64, imageWidth: 100, imageHeight: 80)
        XCTAssertTrue(e == (10, 15, 60, 65), "\(e)")
        // Pushed back inside at the border.
        let edge = A1111Inpainting.expandCropRegion((0, 0, 10, 40), width: 64, height: 64, imageWidth: 100, imageHeight: 80)
        XCTAssertTrue(edge == (0, 0, 40, 40), "\(edge)")
    }

    func testOverlayKeepsEverythingOutsideTheMask() throws {
        let original = try RGBImage(width: 4, height: 4, red: 10, green: 20, blue: 30)
        let generated = try RGBImage(width: 2, height: 2, red: 200, green: 200, blue: 200)
        let mask = gray(4, 4) { x, y -> UInt8 in
            let inside = (1..<3).contains(x) && (1..<3).contains(y)
            guard inside else { return 0 }
            return x == 1 ? 255 : 128
        }
        let out = try A1111Inpainting.overlay(generated, onto: original, mask: mask, at: (1, 1))
        for y in 0..<4 {
            for x in 0..<4 {
                let p = Array(out.pixels[(3 * (y * 4 + x))..<(3 * (y * 4 + x) + 3)])
                if mask[x, y] == 0 { XCTAssertEqual(p, [10, 20, 30], "(\(x), \(y)) is original") }
                if mask[x, y] == 255 { XCTAssertEqual(p, [200, 200, 200], "(\(x), \(y)) is generated") }
                let blended: Int = (200 * 128 + 10 * 127 + 127) / 255
                if mask[x, y] == 128 { XCTAssertEqual(Int(p[0]), blended) }
            }
        }
    }

    func testFillPaintsTheMaskedAreaFromItsSurroundingsOnly() throws {
        // Left half red, right half masked (its blue must not leak into the result).
        var pixels: [UInt8] = []
        for _ in 0..<16 { for x in 0..<16 { pixels += x < 8 ? [250, 0, 0] : [0, 0, 250] } }
        let image = try RGBImage(width: 16, height: 16, pixels: pixels)
        let mask = gray(16, 16) { x, _ in x >= 8 ? 255 : 0 }
        let filled = try A1111Inpainting.fill(image, mask: mask)
        for i in stride(from: 0, to: filled.pixels.count, by: 3) {
            XCTAssertGreaterThan(filled.pixels[i], 200, "red everywhere")
            XCTAssertLessThan(filled.pixels[i + 2], 10, "no blue from under the mask")
        }
    }
}
