import Foundation
import Testing
import TestSupport
@testable import DeciImage

@Suite struct PNGTests {
    static func randomImage(width: Int, height: Int, seed: UInt64) throws -> RGBImage {
        var state = seed
        var px = [UInt8](repeating: 0, count: width * height * 3)
        for i in px.indices {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            px[i] = UInt8(truncatingIfNeeded: state >> 56)
        }
        return try RGBImage(width: width, height: height, pixels: px)
    }

    @Test func roundTripPixelsAndText() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let image = try Self.randomImage(width: 67, height: 41, seed: 9)
        let params = GenerationParameters(prompt: "a red fox, snow", negativePrompt: "blurry", steps: 30, sampler: "DDIM",
                                          cfgScale: 7.5, seed: 1234, width: 67, height: 41, model: "DeciDiffusion-v1-0",
                                          extra: [.init("Guidance rescale", "0.7")])
        let path = dir.appendingPathComponent("out.png").path
        try ImageFile.writePNG(image, to: path, parameters: params,
                               extraText: [PNGTextChunk(key: "Software", value: "decidiffusion"),
                                           PNGTextChunk(key: "Title", value: "猫 \u{1F600}")])
        let back = try ImageFile.read(path: path)
        #expect(back.format == .png)
        #expect(back.image == image)
        #expect(back.alpha == nil)
        #expect(back.text("parameters") == params.text)
        #expect(back.text("Software") == "decidiffusion")
        #expect(back.text("Title") == "猫 \u{1F600}")
        let written = try #require(back.text("parameters"))
        #expect(GenerationParameters.parse(written) == params)
        // No temporary files are left next to the output.
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(names == ["out.png"])
    }

    @Test func overwriteReplacesWholeFile() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("x.png").path
        try ImageFile.writePNG(try Self.randomImage(width: 300, height: 200, seed: 1), to: path)
        let small = try RGBImage(width: 2, height: 3, red: 9, green: 8, blue: 7)
        try ImageFile.writePNG(small, to: path)
        #expect(try ImageFile.read(path: path).image == small)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["x.png"])
    }

    @Test func writeIntoMissingDirectoryNamesThePath() throws {
        let path = "/nonexistent-deci-dir/sub/out.png"
        let image = try RGBImage(width: 1, height: 1)
        #expect {
            try ImageFile.writePNG(image, to: path)
        } throws: { error in
            guard let e = error as? ImageError, case .io(let p, let reason) = e else { return false }
            return p == path && reason.contains("No such file or directory")
        }
    }

    @Test func readsPillowWrittenParametersAndPixels() throws {
        let exp = try ImageExpectations.load()
        let c = try #require(exp.pngs["pillow_parameters.png"])
        let d = try ImageFile.read(path: fixturePath("pillow_parameters.png"))
        #expect(d.image.width == c.width && d.image.height == c.height)
        #expect(d.image.pixels == bytes(fromHex: c.rgb))
        let want = try #require(c.text)
        #expect(want.count == 3)
        for (k, v) in want { #expect(d.text(k) == v, "text chunk \(k)") }
        let paramText = try #require(d.text("parameters"))
        let p = try #require(GenerationParameters.parse(paramText))
        #expect(p.prompt == "a photo of an astronaut riding a horse, highly detailed")
        #expect(p.negativePrompt == "blurry, low quality")
        #expect(p.steps == 30 && p.sampler == "DDIM" && p.cfgScale == 7.5 && p.seed == 42)
        #expect(p.width == 8 && p.height == 6 && p.model == "DeciDiffusion-v1-0")
        #expect(p.extra == [.init("Guidance rescale", "0.7"), .init("Comment", "has, commas: and colons")])
        // Re-formatting what was parsed gives the same text back.
        #expect(p.text == d.text("parameters"))
    }

    @Test(arguments: ["gray8.png", "gray_alpha.png", "rgba.png", "palette.png", "palette_trns.png",
                      "palette_4bit.png", "bilevel.png", "gray16.png", "rgb16.png", "gray2.png", "interlaced.png"])
    func decodesColorTypes(name: String) throws {
        let exp = try ImageExpectations.load()
        let c = try #require(exp.pngs[name])
        let d = try ImageFile.read(path: fixturePath(name))
        #expect(d.image.width == c.width && d.image.height == c.height)
        let diff = byteDiff(d.image.pixels, bytes(fromHex: c.rgb))
        #expect(diff.count == 0, "\(name): \(diff.count) bytes differ, max \(diff.maxDiff)")
        if let a = c.alpha {
            #expect(d.alpha == bytes(fromHex: a), "\(name) alpha")
        } else {
            #expect(d.alpha == nil, "\(name) should have no alpha")
        }
    }

    @Test func truncatedPNGIsAnErrorNamingTheFile() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let full = try FileIO.readAll(path: fixturePath("resize_source.png"))
        for cut in [9, 40, full.count / 2, full.count - 13] {
            let path = dir.appendingPathComponent("cut\(cut).png").path
            try Data(full[0..<cut]).write(to: URL(fileURLWithPath: path))
            #expect {
                _ = try ImageFile.read(path: path)
            } throws: { error in
                guard let e = error as? ImageError, case .corrupt(let p, let f, _) = e else { return false }
                return p == path && f == "PNG" && e.description.hasPrefix(path)
            }
        }
    }

    @Test func corruptedDataIsAnError() throws {
        var bytes = try FileIO.readAll(path: fixturePath("resize_source.png"))
        // Flip bits inside the first IDAT payload: its CRC no longer matches.
        let tag: [UInt8] = Array("IDAT".utf8)
        let found = (0..<(bytes.count - 4)).first { Array(bytes[$0..<($0 + 4)]) == tag }
        let idat = try #require(found)
        bytes[idat + 20] ^= 0x5A
        #expect {
            _ = try ImageFile.decode(bytes, path: "flipped.png")
        } throws: { error in
            guard let e = error as? ImageError, case .corrupt(_, _, let reason) = e else { return false }
            return !reason.isEmpty
        }
    }

    @Test func notAnImage() throws {
        #expect(throws: ImageError.unrecognizedFormat(path: "x.txt")) {
            _ = try ImageFile.decode(Array("hello, world".utf8), path: "x.txt")
        }
        #expect(throws: ImageError.self) { _ = try ImageFile.decode([], path: "empty") }
        #expect {
            _ = try ImageFile.read(path: "/no/such/file.png")
        } throws: { error in
            (error as? ImageError)?.description == "/no/such/file.png: cannot open: No such file or directory"
        }
    }

    @Test func rejectsBadTextKeys() throws {
        let image = try RGBImage(width: 1, height: 1)
        for key in ["", " lead", "trail ", "double  space", String(repeating: "k", count: 80), "tab\tkey"] {
            #expect(throws: ImageError.self) { _ = try ImageFile.encodePNG(image, text: [PNGTextChunk(key: key, value: "v")]) }
        }
        #expect(throws: ImageError.self) { _ = try ImageFile.encodePNG(image, text: [PNGTextChunk(key: "k", value: "a\0b")]) }
    }

    /// Opt-in: DECI_PYTHON=/path/to/python (with Pillow) verifies that Pillow reads a PNG written here,
    /// pixels and text, as A1111-style readers do.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["DECI_PYTHON"] != nil))
    func pillowReadsSwiftWrittenPNG() throws {
        let python = try #require(ProcessInfo.processInfo.environment["DECI_PYTHON"])
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let image = try Self.randomImage(width: 13, height: 7, seed: 77)
        let params = GenerationParameters(prompt: "über café, 猫", negativePrompt: "bad: hands", steps: 20, sampler: "Euler a",
                                          cfgScale: 7, seed: 18446744073709551615, width: 13, height: 7, model: "m")
        let path = dir.appendingPathComponent("swift.png").path
        try ImageFile.writePNG(image, to: path, parameters: params)
        let script = """
        import sys, json
        from PIL import Image
        im = Image.open(sys.argv[1]); im.load()
        print(json.dumps({"mode": im.mode, "size": im.size, "hex": im.tobytes().hex(), "text": im.text}))
        """
        let proc = Process()
        proc.executableURL = URL(fileURLWithPath: python)
        proc.arguments = ["-c", script, path]
        let pipe = Pipe()
        proc.standardOutput = pipe
        try proc.run()
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        proc.waitUntilExit()
        struct R: Decodable { var mode: String; var size: [Int]; var hex: String; var text: [String: String] }
        let r = try JSONDecoder().decode(R.self, from: out)
        #expect(r.mode == "RGB" && r.size == [13, 7])
        #expect(bytes(fromHex: r.hex) == image.pixels)
        #expect(r.text["parameters"] == params.text)
    }
}
