import DeciDiffusion
import DeciImage
import Foundation
import Testing
import TestSupport

/// End-to-end checks of the bundled demo model (Models/demo, trained by tools/train_demo_model.py):
/// tokenizer, CLIP text encoder, U-Net-NAS, DDIM v-prediction with zero-SNR trailing steps,
/// classifier-free guidance with rescale, and the VAE decoder, all through `DiffusionPipeline` at
/// its defaults (64x64, 30 steps, guidance 7.5, rescale 0.7), f32.
///
/// The pictures are read back with the same rules as tools/demo_shapes.py (`read_picture`): each
/// pixel takes the nearest palette colour (or none beyond `matchDistance`), the background is the
/// commonest colour, the shape colour the next commonest, the position the nearest anchor to the
/// shape pixels' centroid. Keep the constants in step with that file.
@Suite("Bundled demo model", .serialized)
struct DemoModelTests {
    /// Fraction of prompts whose background, shape colour and (when asked) position must all be
    /// right. diffusers itself scores the figure in Fixtures/demo/diffusers/README.md on these prompts.
    static let requiredAccuracy = 0.75

    struct Case {
        var prompt: String
        var colour: String
        var background: String
        var position: String?
        /// The (colour, shape, background) combination never appears in training.
        var heldOut = false
    }

    /// tools/demo_shapes.EVAL_PROMPTS, in order (seed = 1000 + index).
    static let cases: [Case] = [
        Case(prompt: "a red circle on a blue background", colour: "red", background: "blue"),
        Case(prompt: "a small yellow square in the top left corner on a green background", colour: "yellow", background: "green", position: "top left"),
        Case(prompt: "a large green triangle in the center on a white background", colour: "green", background: "white", position: "center", heldOut: true),
        Case(prompt: "a yellow circle in the bottom right corner on a black background", colour: "yellow", background: "black", position: "bottom right", heldOut: true),
        Case(prompt: "a blue square in the top right corner on a red background", colour: "blue", background: "red", position: "top right", heldOut: true),
        Case(prompt: "a large white circle in the bottom left corner on a green background", colour: "white", background: "green", position: "bottom left", heldOut: true),
        Case(prompt: "a small red triangle in the center on a yellow background", colour: "red", background: "yellow", position: "center", heldOut: true),
        Case(prompt: "a black square in the top left corner on a blue background", colour: "black", background: "blue", position: "top left", heldOut: true),
        Case(prompt: "a blue circle in the top left corner on a yellow background", colour: "blue", background: "yellow", position: "top left"),
        Case(prompt: "a large red square in the bottom right corner on a white background", colour: "red", background: "white", position: "bottom right"),
        Case(prompt: "a green circle in the top right corner on a black background", colour: "green", background: "black", position: "top right"),
        Case(prompt: "a white triangle in the bottom left corner on a blue background", colour: "white", background: "blue", position: "bottom left"),
        Case(prompt: "a small black circle in the center on a white background", colour: "black", background: "white", position: "center"),
        Case(prompt: "a yellow triangle in the top right corner on a red background", colour: "yellow", background: "red", position: "top right"),
        Case(prompt: "a large blue triangle in the bottom left corner on a green background", colour: "blue", background: "green", position: "bottom left"),
        Case(prompt: "a green square in the bottom right corner on a yellow background", colour: "green", background: "yellow", position: "bottom right"),
        Case(prompt: "a red circle in the top left corner on a black background", colour: "red", background: "black", position: "top left"),
        Case(prompt: "a white square in the center on a red background", colour: "white", background: "red", position: "center"),
        Case(prompt: "a black triangle in the bottom right corner on a white background", colour: "black", background: "white", position: "bottom right"),
        Case(prompt: "a yellow square on a blue background", colour: "yellow", background: "blue"),
        Case(prompt: "a small green circle in the bottom left corner on a red background", colour: "green", background: "red", position: "bottom left"),
        Case(prompt: "a large yellow circle in the center on a green background", colour: "yellow", background: "green", position: "center"),
        Case(prompt: "a blue triangle in the top left corner on a white background", colour: "blue", background: "white", position: "top left"),
        Case(prompt: "a red square in the top right corner on a green background", colour: "red", background: "green", position: "top right"),
    ]
    static let seedBase: UInt64 = 1000

    /// Indices of the cases generated. Debug builds run every third case (about 2 s a picture
    /// there) unless DECI_FULL=1; release builds run all of them (well under a second each).
    static let selected: [Int] = {
        #if DEBUG
        if !FixturePaths.fullSizeEnabled { return Array(stride(from: 0, to: cases.count, by: 3)) }
        #endif
        return Array(cases.indices)
    }()

    static var folder: URL { FixturePaths.root.deletingLastPathComponent().appendingPathComponent("Models/demo") }

    /// Every case generated once (f32, pipeline defaults) and shared by the tests below.
    static let generated: Result<(images: [RGBImage], seconds: Double, size: Int), any Error> = Result(catching: {
        let pipeline = try DiffusionPipeline(folder: folder, precision: .f32)
        let t0 = Date()
        var images: [RGBImage] = []
        for i in selected {
            let c = cases[i]
            var request = GenerationRequest(prompt: c.prompt)
            request.seed = seedBase + UInt64(i)
            guard let image = try pipeline.generate(request).images.first else { throw DemoTestError("no picture for \(c.prompt)") }
            images.append(image)
        }
        // Handy for the README: DECI_DEMO_EXAMPLES=<folder> writes the pictures as PNGs.
        if let dir = ProcessInfo.processInfo.environment["DECI_DEMO_EXAMPLES"] {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            for (i, image) in zip(selected, images) {
                try ImageFile.writePNG(image, to: "\(dir)/demo_\(String(format: "%02d", i)).png")
            }
        }
        return (images, Date().timeIntervalSince(t0), pipeline.defaults.width)
    })

    @Test func layoutAndDefaults() throws {
        let pipeline = try DiffusionPipeline(folder: Self.folder, precision: .f32)
        #expect(pipeline.layout.index?.className == "DeciDiffusionPipeline")
        #expect(pipeline.layout.denoiser == .unetNAS)
        #expect(pipeline.defaults == .deciDiffusion(size: 64), "the default size should follow vae/config.json's sample_size (64)")
        #expect(pipeline.imageSizeMultiple == 32, "VAE factor 4 x three U-Net-NAS downsamplers")
        let files = try #require(FileManager.default.enumerator(at: Self.folder, includingPropertiesForKeys: [.fileSizeKey]))
        var bytes = 0
        for case let url as URL in files where !url.path.contains("/examples/") {
            bytes += (try? url.resourceValues(forKeys: [.fileSizeKey]).fileSize) ?? 0
        }
        #expect(bytes > 1_000_000 && bytes <= 20_000_000, "demo model is \(bytes) bytes; the budget is 20 MB")
    }

    @Test func picturesShowWhatWasAsked() throws {
        let (images, seconds, size) = try Self.generated.get()
        #expect(size == 64)
        var passed = 0, heldOutPassed = 0
        var byCheck: [String: (ok: Int, total: Int)] = [:]
        let cases = Self.selected.map { Self.cases[$0] }
        for (c, image) in zip(cases, images) {
            #expect(image.width == 64 && image.height == 64)
            let got = DemoPicture(image)
            var checks = [("background", got.background == c.background), ("colour", got.colour == c.colour)]
            if let p = c.position { checks.append(("position", got.position == p)) }
            for (name, ok) in checks { byCheck[name, default: (0, 0)].ok += ok ? 1 : 0; byCheck[name, default: (0, 0)].total += 1 }
            let ok = checks.allSatisfy(\.1)
            passed += ok ? 1 : 0
            heldOutPassed += ok && c.heldOut ? 1 : 0
            print("\(ok ? "ok  " : "FAIL") \(c.heldOut ? "(held out) " : "")\(c.prompt): got \(got)")
        }
        let accuracy = Double(passed) / Double(cases.count)
        let detail = byCheck.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value.ok)/\($0.value.total)" }.joined(separator: ", ")
        print("demo model: \(passed)/\(cases.count) pictures right (\(Int((accuracy * 100).rounded()))%), held-out combinations "
              + "\(heldOutPassed)/\(cases.filter(\.heldOut).count); \(detail); \(String(format: "%.1f", seconds)) s for \(cases.count) pictures")
        #expect(accuracy >= Self.requiredAccuracy, "only \(passed)/\(cases.count) pictures show what was asked")
    }

    /// The engine should draw the same pictures as diffusers from the same weights and seeds: f32
    /// rounding differences between the engine's kernels and PyTorch's, carried through 30 guided
    /// steps, may move a few edge pixels, nothing more.
    @Test func matchesDiffusers() throws {
        let (images, _, _) = try Self.generated.get()
        var worst = 0, totalDiff = 0, count = 0
        for (i, image) in zip(Self.selected, images) {
            let path = FixturePaths.url("demo/diffusers/eval_\(String(format: "%02d", i)).png").path
            let reference = try ImageFile.read(path: path).image
            try #require(reference.width == image.width && reference.height == image.height)
            var imageWorst = 0, far = 0
            for (a, b) in zip(image.pixels, reference.pixels) {
                let d = abs(Int(a) - Int(b))
                imageWorst = max(imageWorst, d)
                far += d > Self.closeLevels ? 1 : 0
                totalDiff += d
                count += 1
            }
            worst = max(worst, imageWorst)
            let farFraction = Double(far) / Double(image.pixels.count)
            #expect(farFraction <= Self.maxFarFraction,
                    "picture \(i) (\(Self.cases[i].prompt)): \(far) of \(image.pixels.count) values differ from diffusers by more than \(Self.closeLevels)/255 (max \(imageWorst))")
        }
        let mean = Double(totalDiff) / Double(max(count, 1))
        print("demo model vs diffusers: max |diff| \(worst)/255, mean \(String(format: "%.4f", mean))/255 over \(images.count) pictures")
        #expect(mean <= Self.maxMeanDifference)
    }

    static let closeLevels = 8
    static let maxFarFraction = 0.01
    static let maxMeanDifference = 0.5
}

struct DemoTestError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// What a demo picture shows, read as tools/demo_shapes.read_picture reads it.
struct DemoPicture: CustomStringConvertible {
    static let palette: [(name: String, rgb: (Double, Double, Double))] = [
        ("red", (220, 40, 40)), ("green", (40, 170, 60)), ("blue", (40, 70, 220)),
        ("yellow", (240, 210, 40)), ("white", (240, 240, 240)), ("black", (20, 20, 20)),
    ]
    static let matchDistance = 90.0
    static let minShapePixels = 12
    static let anchors: [(name: String, x: Double, y: Double)] = [
        ("top left", 18, 18), ("top right", 46, 18), ("bottom left", 18, 46), ("bottom right", 46, 46), ("center", 32, 32),
    ]

    var background: String
    var colour: String?
    var position: String?
    var shapePixels: Int

    init(_ image: RGBImage) {
        let n = image.width * image.height
        var classes = [Int](repeating: -1, count: n)
        var counts = [Int](repeating: 0, count: Self.palette.count)
        for i in 0..<n {
            let (r, g, b) = (Double(image.pixels[3 * i]), Double(image.pixels[3 * i + 1]), Double(image.pixels[3 * i + 2]))
            var best = -1, bestDistance = Double.infinity
            for (k, p) in Self.palette.enumerated() {
                let d = ((r - p.rgb.0) * (r - p.rgb.0) + (g - p.rgb.1) * (g - p.rgb.1) + (b - p.rgb.2) * (b - p.rgb.2)).squareRoot()
                if d < bestDistance { bestDistance = d; best = k }
            }
            if bestDistance <= Self.matchDistance {
                classes[i] = best
                counts[best] += 1
            }
        }
        // First index wins ties, as numpy's argmax.
        let bg = counts.indices.reduce(0) { counts[$1] > counts[$0] ? $1 : $0 }
        background = Self.palette[bg].name
        var fg = bg == 0 ? 1 : 0
        for k in counts.indices where k != bg && counts[k] > counts[fg] { fg = k }
        shapePixels = counts[fg]
        guard shapePixels >= Self.minShapePixels else { return }
        colour = Self.palette[fg].name
        var sx = 0.0, sy = 0.0
        for i in 0..<n where classes[i] == fg {
            sx += Double(i % image.width) + 0.5
            sy += Double(i / image.width) + 0.5
        }
        let (cx, cy) = (sx / Double(shapePixels), sy / Double(shapePixels))
        position = Self.anchors.min { ($0.x - cx) * ($0.x - cx) + ($0.y - cy) * ($0.y - cy) < ($1.x - cx) * ($1.x - cx) + ($1.y - cy) * ($1.y - cy) }?.name
    }

    var description: String {
        "background \(background), shape \(colour ?? "none") at \(position ?? "-") (\(shapePixels) px)"
    }
}
