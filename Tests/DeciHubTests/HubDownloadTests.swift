import DeciDiffusion
import DeciHub
import DeciImage
import Foundation
import TestSupport
import XCTest

/// `decidiffusion download` against a real HTTP server on loopback that speaks the Hub's endpoints
/// (FakeHub), into a temporary hub cache.
final class HubDownloadTests: XCTestCase {
    static let demo = FixturePaths.root.deletingLastPathComponent().appendingPathComponent("Models/demo")

    var cache: URL!

    override func setUpWithError() throws {
        cache = FileManager.default.temporaryDirectory.appendingPathComponent("deci-hub-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: cache, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: cache) }

    func settings(_ endpoint: String, token: String? = nil, offline: Bool = false) -> HubSettings {
        HubSettings(endpoint: endpoint, token: token, offline: offline, cacheDirectory: cache)
    }

    /// The demo model as a Hub repo, with what a real repo also carries and the engine must skip.
    static func demoRepo(id: String = "test-org/demo") throws -> FakeRepo {
        try FakeRepo.folder(demo, id: id, extra: [
            "README.md": Data("# demo\n".utf8),
            "vae/diffusion_pytorch_model.bin": Data("pickle, never fetched".utf8),
            "text_encoder/model.fp16.safetensors": Data("an fp16 variant (not a real file)".utf8),
            "unet/diffusion_pytorch_model.safetensors": Data("not listed in model_index.json".utf8),
        ])
    }

    /// A small pipeline repo (not loadable, only its files matter) for the error cases.
    static func tinyRepo(id: String = "test-org/tiny", weights: Int = 300_000) -> FakeRepo {
        let index = #"{"_class_name": "StableDiffusionPipeline", "tokenizer": ["transformers", "CLIPTokenizer"], "text_encoder": ["transformers", "CLIPTextModel"], "vae": ["diffusers", "AutoencoderKL"], "scheduler": ["diffusers", "DDIMScheduler"], "unet": ["diffusers", "UNet2DConditionModel"], "safety_checker": [null, null]}"#
        var files: [String: Data] = ["model_index.json": Data(index.utf8), "scheduler/scheduler_config.json": Data("{}".utf8),
                                     "tokenizer/vocab.json": Data("{}".utf8), "tokenizer/merges.txt": Data("#version: 0.2\n".utf8)]
        for component in ["text_encoder", "vae", "unet"] {
            files["\(component)/config.json"] = Data("{}".utf8)
            let name = component == "text_encoder" ? "model.safetensors" : "diffusion_pytorch_model.safetensors"
            files["\(component)/\(name)"] = Data((0..<weights).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ component.count) })
        }
        return FakeRepo(id: id, commit: String(repeating: "c0ffee12", count: 5), files: files)
    }

    func testFullDownloadWritesTheHubCacheLayoutAndTheModelGenerates() async throws {
        let repo = try Self.demoRepo()
        let script = HubScript()
        let base = settings("")
        let result = try await FakeHub.run([repo], script: script) { endpoint in
            var s = base
            s.endpoint = endpoint
            return try await HubDownloader(settings: s).download(repo: repo.id)
        }
        let root = cache.appendingPathComponent("models--test-org--demo")
        XCTAssertEqual(try String(contentsOf: root.appendingPathComponent("refs/main"), encoding: .utf8), repo.commit)
        XCTAssertEqual(result.snapshot.path, root.appendingPathComponent("snapshots/\(repo.commit)").path)
        let expected = repo.files.keys.filter { !["README.md", "vae/diffusion_pytorch_model.bin", "text_encoder/model.fp16.safetensors",
                                                  "unet/diffusion_pytorch_model.safetensors"].contains($0) }.sorted()
        XCTAssertEqual(result.files.sorted(), expected)
        XCTAssertEqual(result.bytesDownloaded, Int64(expected.reduce(0) { $0 + repo.files[$1]!.count }))
        // Every snapshot entry is a relative link to blobs/<etag> holding exactly the file's bytes.
        let fm = FileManager.default
        for file in expected {
            let link = result.snapshot.appendingPathComponent(file)
            let target = try fm.destinationOfSymbolicLink(atPath: link.path)
            let depth = file.split(separator: "/").count - 1
            XCTAssertEqual(target, String(repeating: "../", count: depth + 2) + "blobs/" + repo.etag(file)!, file)
            XCTAssertEqual(try Data(contentsOf: link), repo.files[file], file)
        }
        let blobs = try fm.contentsOfDirectory(atPath: root.appendingPathComponent("blobs").path).sorted()
        XCTAssertEqual(blobs, Set(expected.map { repo.etag($0)! }).sorted(), "no .incomplete or stray blobs")
        XCTAssertTrue(repo.etag("vae/diffusion_pytorch_model.safetensors")!.count == 64 && repo.etag("vae/config.json")!.count == 40)
        XCTAssertFalse(fm.fileExists(atPath: result.snapshot.appendingPathComponent("README.md").path))
        XCTAssertFalse(script.authorizations.contains { !$0.isEmpty }, "no token configured, none sent")

        // A second run fetches nothing: the snapshot is complete for that commit.
        let again = try await FakeHub.run([repo], script: script) { endpoint in
            var s = base
            s.endpoint = endpoint
            return try await HubDownloader(settings: s).download(repo: repo.id)
        }
        XCTAssertEqual(again.bytesDownloaded, 0)

        // `--model test-org/demo` finds the snapshot, and it generates the same picture as the folder.
        let located = try CheckpointLayout.locate(repo.id, environment: ["HF_HUB_CACHE": cache.path, "HOME": cache.path])
        XCTAssertEqual(located.path, result.snapshot.path)
        var request = GenerationRequest(prompt: "a red circle on a blue background")
        request.steps = 4
        request.seed = 7
        let fromCache = try DiffusionPipeline(folder: located, precision: .f32).generate(request).images
        let fromFolder = try DiffusionPipeline(folder: Self.demo, precision: .f32).generate(request).images
        XCTAssertEqual(fromCache.count, 1)
        XCTAssertEqual(fromCache, fromFolder)
        try crossCheckWithHuggingFaceHub(repo: repo, files: expected)
    }

    /// huggingface_hub, offline, reads the cache this tool wrote (scan_cache_dir rejects a bad
    /// layout). Required when DECI_HUB_PYTHON names an interpreter (tools/e2e/run.sh sets it);
    /// otherwise run when the project's venv has huggingface_hub. The Swift checks above stand alone.
    func crossCheckWithHuggingFaceHub(repo: FakeRepo, files: [String]) throws {
        let required = ProcessInfo.processInfo.environment["DECI_HUB_PYTHON"]
        let python = required ?? NSHomeDirectory() + "/.cache/decidiffusion/venv/bin/python"
        guard FileManager.default.isExecutableFile(atPath: python) else {
            if required != nil { XCTFail("DECI_HUB_PYTHON=\(python) is not an executable") }
            return
        }
        let script = """
            import json, sys, hashlib
            try:
                import huggingface_hub as h
            except ImportError:
                print("SKIP"); sys.exit(0)
            cache, repo, files = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
            info = h.scan_cache_dir(cache)
            assert not info.warnings, info.warnings
            [r] = info.repos
            assert r.repo_id == repo and r.repo_type == "model", r
            [rev] = r.revisions
            assert "main" in rev.refs, rev.refs
            assert sorted(f.file_name for f in rev.files) == sorted(p.split("/")[-1] for p in files)
            out = {}
            for f in files:
                p = h.hf_hub_download(repo, f, cache_dir=cache, local_files_only=True)
                out[f] = hashlib.sha256(open(p, "rb").read()).hexdigest()
            print(json.dumps({"snapshot": h.snapshot_download(repo, cache_dir=cache, local_files_only=True), "sha256": out}))
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-c", script, cache.path, repo.id, String(decoding: try JSONSerialization.data(withJSONObject: files), as: UTF8.self)]
        var env = ProcessInfo.processInfo.environment
        env["HF_HUB_OFFLINE"] = "1"
        process.environment = env
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "huggingface_hub could not read the cache")
        let text = String(decoding: output, as: UTF8.self)
        if text.hasPrefix("SKIP") {
            if required != nil { XCTFail("huggingface_hub is not installed for \(python)") }
            return
        }
        let obj = try XCTUnwrap(try JSONSerialization.jsonObject(with: output) as? [String: Any], text)
        XCTAssertEqual(obj["snapshot"] as? String, cache.appendingPathComponent("models--test-org--demo/snapshots/\(repo.commit)").path)
        let hashes = try XCTUnwrap(obj["sha256"] as? [String: String])
        for file in files { XCTAssertEqual(hashes[file], ContentHash.etag(of: repo.files[file]!, lfs: true), file) }
    }

    func testVariantFetchesTheFP16Weights() async throws {
        let repo = try Self.demoRepo()
        let s = settings("")
        let result = try await FakeHub.run([repo]) { endpoint in
            var s = s
            s.endpoint = endpoint
            return try await HubDownloader(settings: s).download(repo: repo.id, variant: "fp16")
        }
        XCTAssertTrue(result.files.contains("text_encoder/model.fp16.safetensors"))
        XCTAssertFalse(result.files.contains("text_encoder/model.safetensors"))
        XCTAssertTrue(result.files.contains("vae/diffusion_pytorch_model.safetensors"), "no fp16 vae: the plain weights")
        XCTAssertTrue(result.notes.contains { $0.contains("vae/: no 'fp16' variant") }, "\(result.notes)")
    }

    func testInterruptedDownloadResumesWithARangeRequest() async throws {
        let repo = Self.tinyRepo()
        let file = "unet/diffusion_pytorch_model.safetensors"
        let script = HubScript()
        script.dropAfter = [file: 100_000]
        let s = settings("")
        let etag = repo.etag(file)!
        let cacheDir: URL = cache
        let partial = cacheDir.appendingPathComponent("models--test-org--tiny/blobs/\(etag).incomplete")
        try await FakeHub.run([repo], script: script) { endpoint in
            var s = s
            s.endpoint = endpoint
            do {
                _ = try await HubDownloader(settings: s).download(repo: repo.id)
                XCTFail("the dropped connection went unnoticed")
            } catch let error as HubError {
                guard case .interrupted(let f, _) = error else { return XCTFail("\(error)") }
                XCTAssertEqual(f, file)
                XCTAssertTrue(error.description.contains("resumes"), error.description)
            }
            // What arrived is kept; the blob itself is not there yet, nor the snapshot entry.
            let kept = try XCTUnwrap(try FileManager.default.attributesOfItem(atPath: partial.path)[.size] as? NSNumber).intValue
            XCTAssertGreaterThan(kept, 0)
            XCTAssertLessThan(kept, repo.files[file]!.count)
            XCTAssertFalse(FileManager.default.fileExists(atPath: partial.deletingPathExtension().path))
            XCTAssertFalse(FileManager.default.fileExists(atPath: cacheDir.appendingPathComponent("models--test-org--tiny/snapshots/\(repo.commit)/\(file)").path))
            let result = try await HubDownloader(settings: s).download(repo: repo.id)
            XCTAssertEqual(try Data(contentsOf: result.snapshot.appendingPathComponent(file)), repo.files[file])
            XCTAssertEqual(script.ranges, ["bytes=\(kept)-"], "the second run asked only for the rest")
            XCTAssertEqual(result.bytesDownloaded, Int64(repo.files[file]!.count - kept), "only the rest was transferred")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: partial.path))
    }

    func testCorruptedFileIsRejectedAndDeleted() async throws {
        let repo = Self.tinyRepo()
        let script = HubScript()
        script.corrupt = ["vae/diffusion_pytorch_model.safetensors", "tokenizer/vocab.json"]
        let s = settings("")
        try await FakeHub.run([repo], script: script) { endpoint in
            var s = s
            s.endpoint = endpoint
            do {
                _ = try await HubDownloader(settings: s).download(repo: repo.id)
                XCTFail("a corrupted file was accepted")
            } catch let error as HubError {
                guard case .corrupt(let file, let reason) = error else { return XCTFail("\(error)") }
                // The small file (git sha1) comes first in the order fetched: tokenizer before vae.
                XCTAssertEqual(file, "tokenizer/vocab.json")
                XCTAssertTrue(reason.contains("git sha1"), reason)
            }
            script.corrupt = ["vae/diffusion_pytorch_model.safetensors"]
            do {
                _ = try await HubDownloader(settings: s).download(repo: repo.id)
                XCTFail("a corrupted file was accepted")
            } catch let error as HubError {
                guard case .corrupt(let file, let reason) = error else { return XCTFail("\(error)") }
                XCTAssertEqual(file, "vae/diffusion_pytorch_model.safetensors")
                XCTAssertTrue(reason.contains("sha256"), reason)
            }
        }
        let blobs = cache.appendingPathComponent("models--test-org--tiny/blobs")
        let names = try FileManager.default.contentsOfDirectory(atPath: blobs.path)
        XCTAssertFalse(names.contains { $0.hasPrefix(repo.etag("vae/diffusion_pytorch_model.safetensors")!) }, "\(names)")
        XCTAssertFalse(names.contains { $0.hasSuffix(".incomplete") }, "\(names)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: cache.appendingPathComponent(
            "models--test-org--tiny/snapshots/\(repo.commit)/vae/diffusion_pytorch_model.safetensors").path))
        XCTAssertFalse(FileManager.default.fileExists(atPath: cache.appendingPathComponent("models--test-org--tiny/refs/main").path),
                       "refs/main is written only once the snapshot is complete")
    }

    func testUnauthorizedIsExplainedAndTheTokenIsSent() async throws {
        let repo = Self.tinyRepo(weights: 1000)
        let script = HubScript()
        script.requiredToken = "hf_right"
        let s = settings("")
        try await FakeHub.run([repo], script: script) { endpoint in
            var s = s
            s.endpoint = endpoint
            for (token, sent) in [(nil, false), ("hf_wrong", true)] as [(String?, Bool)] {
                s.token = token
                do {
                    _ = try await HubDownloader(settings: s).download(repo: repo.id)
                    XCTFail("401 not reported")
                } catch let error as HubError {
                    guard case .unauthorized(let r, let tokenSent, _) = error else { return XCTFail("\(error)") }
                    XCTAssertEqual(r, repo.id)
                    XCTAssertEqual(tokenSent, sent)
                    XCTAssertTrue(error.description.contains("HF_TOKEN"), error.description)
                    XCTAssertTrue(error.description.contains("401"), error.description)
                }
            }
            s.token = "hf_right"
            let result = try await HubDownloader(settings: s).download(repo: repo.id)
            XCTAssertEqual(result.files.count, 10)
        }
        XCTAssertTrue(script.authorizations.contains("Bearer hf_right"))
    }

    func testNotFoundNamesTheRepoOrRevision() async throws {
        let repo = Self.tinyRepo(weights: 1000)
        let s = settings("")
        try await FakeHub.run([repo]) { endpoint in
            var s = s
            s.endpoint = endpoint
            for (id, revision, needle) in [("test-org/missing", "main", "repo test-org/missing"), (repo.id, "v9", "revision")] {
                do {
                    _ = try await HubDownloader(settings: s).download(repo: id, revision: revision)
                    XCTFail("404 not reported")
                } catch let error as HubError {
                    guard case .notFound = error else { return XCTFail("\(error)") }
                    XCTAssertTrue(error.description.contains(needle), error.description)
                }
            }
        }
    }

    func testOfflineModeUsesOnlyTheCache() async throws {
        let repo = Self.tinyRepo(weights: 1000)
        // Nothing listens on the endpoint: offline mode must not try.
        let offline = settings("http://127.0.0.1:9", offline: true)
        do {
            _ = try await HubDownloader(settings: offline).download(repo: repo.id)
            XCTFail("offline and not cached, yet no error")
        } catch {
            guard case .offlineNotCached = error else { return XCTFail("\(error)") }
            XCTAssertTrue(error.description.contains("HF_HUB_OFFLINE"), error.description)
        }
        let s = settings("")
        let online = try await FakeHub.run([repo]) { endpoint in
            var s = s
            s.endpoint = endpoint
            return try await HubDownloader(settings: s).download(repo: repo.id)
        }
        let cached = try await HubDownloader(settings: offline).download(repo: repo.id)
        XCTAssertEqual(cached.snapshot, online.snapshot)
        XCTAssertEqual(cached.bytesDownloaded, 0)
        XCTAssertEqual(HubSettings(environment: ["HF_HUB_OFFLINE": "1", "HOME": "/h"]).offline, true)
        XCTAssertEqual(HubSettings(environment: ["HF_HUB_OFFLINE": "0", "HOME": "/h"]).offline, false)
    }

    func testSettingsFollowHuggingFaceHubVariables() {
        let a = HubSettings(environment: ["HOME": "/h"])
        XCTAssertEqual(a.cacheDirectory.path, "/h/.cache/huggingface/hub")
        XCTAssertEqual(a.endpoint, "https://huggingface.co")
        XCTAssertNil(a.token)
        let b = HubSettings(environment: ["HOME": "/h", "HF_HOME": "/hf", "HF_TOKEN": "hf_x", "HF_ENDPOINT": "http://mirror.local/"])
        XCTAssertEqual(b.cacheDirectory.path, "/hf/hub")
        XCTAssertEqual(b.token, "hf_x")
        XCTAssertEqual(b.endpoint, "http://mirror.local")
        XCTAssertEqual(HubSettings(environment: ["HOME": "/h", "HF_HOME": "/hf", "HF_HUB_CACHE": "/c"]).cacheDirectory.path, "/c")
    }

    func testHostileNamesAreRefused() async throws {
        for id in ["../etc", "a/b/c", "/abs/x", "a--b/c", "a/..", "org/na me"] {
            XCTAssertThrowsError(try HubNames.validateRepoID(id), id)
        }
        XCTAssertThrowsError(try HubNames.validateRevision("../../x"))
        XCTAssertNoThrow(try HubNames.validateRevision("refs/pr/1"))
        XCTAssertThrowsError(try HubNames.normalizedETag("\"../../../../tmp/evil\"", file: "f"))
        let s = settings("")
        for hostile in ["../../../escaped.json", "/etc/passwd", "vae/../../x.json", "tokenizer//vocab.json"] {
            let script = HubScript()
            script.extraListing = [hostile]
            try await FakeHub.run([Self.tinyRepo(weights: 1000)], script: script) { endpoint in
                var s = s
                s.endpoint = endpoint
                do {
                    _ = try await HubDownloader(settings: s).download(repo: "test-org/tiny")
                    XCTFail("\(hostile) accepted")
                } catch let error as HubError {
                    guard case .badResponse(let message) = error else { return XCTFail("\(error)") }
                    XCTAssertTrue(message.contains("not a safe relative path"), message)
                }
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: cache.appendingPathComponent("models--test-org--tiny/snapshots").path),
                           "nothing written before the listing was checked")
        }
    }

    func testAbsurdAnnouncedSizeIsRefused() async throws {
        let repo = Self.tinyRepo(weights: 1000)
        let script = HubScript()
        script.announcedSize = ["vae/diffusion_pytorch_model.safetensors": 1 << 50, "scheduler/scheduler_config.json": 1 << 40]
        let s = settings("")
        try await FakeHub.run([repo], script: script) { endpoint in
            var s = s
            s.endpoint = endpoint
            do {
                _ = try await HubDownloader(settings: s).download(repo: repo.id)
                XCTFail("absurd size accepted")
            } catch let error as HubError {
                guard case .badResponse(let message) = error else { return XCTFail("\(error)") }
                XCTAssertTrue(message.contains("over the"), message)
            }
        }
    }

    func testProgressShowsBytesAndRate() {
        let lines = Lines()
        let plain = DownloadProgress(interactive: false) { lines.append($0) }
        plain.handle(.planned(commit: String(repeating: "a", count: 40), files: 1, bytes: 2_500_000))
        plain.handle(.fileStarted(path: "vae/diffusion_pytorch_model.safetensors", size: 2_500_000, resumedFrom: 500_000))
        plain.handle(.bytes(2_000_000))
        plain.handle(.fileFinished(path: "vae/diffusion_pytorch_model.safetensors"))
        XCTAssertTrue(lines.text.contains("1 file, 2.5 MB to fetch"), lines.text)
        XCTAssertTrue(lines.text.contains("resuming at 500.0 kB"), lines.text)
        XCTAssertTrue(lines.text.contains("done vae/diffusion_pytorch_model.safetensors: 2.0 MB in"), lines.text)
        XCTAssertTrue(lines.text.contains("MB/s") || lines.text.contains("GB/s"), lines.text)
        let bar = Lines()
        let tty = DownloadProgress(interactive: true) { bar.append($0) }
        tty.handle(.planned(commit: String(repeating: "a", count: 40), files: 1, bytes: 1_000_000))
        tty.handle(.fileStarted(path: "f.safetensors", size: 1_000_000, resumedFrom: 0))
        tty.handle(.bytes(500_000))
        tty.finish()
        XCTAssertTrue(bar.text.contains("[############------------]  50% 500.0 kB / 1.0 MB"), bar.text)
        XCTAssertTrue(bar.text.hasSuffix("\n"))
    }

    /// Opt-in figure (DECI_HUB_BENCH=1): loopback download rate of one 512 MB LFS file, hashing and
    /// writing included. Prints; asserts only that the bytes arrived intact.
    func testLoopbackThroughputFigure() async throws {
        guard ProcessInfo.processInfo.environment["DECI_HUB_BENCH"] == "1" else { throw XCTSkip("set DECI_HUB_BENCH=1") }
        let size = 512 << 20
        var big = Self.tinyRepo(weights: 1000)
        big.files["unet/diffusion_pytorch_model.safetensors"] = Data((0..<size).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) })
        let repo = big
        let s = settings("")
        let (result, seconds) = try await FakeHub.run([repo]) { endpoint in
            var s = s
            s.endpoint = endpoint
            let start = Date()
            let result = try await HubDownloader(settings: s).download(repo: repo.id)
            return (result, Date().timeIntervalSince(start))
        }
        XCTAssertEqual(try Data(contentsOf: result.snapshot.appendingPathComponent("unet/diffusion_pytorch_model.safetensors")).count, size)
        print("hub download over loopback: \(size >> 20) MB in \(String(format: "%.2f", seconds)) s = \(String(format: "%.0f", Double(size) / seconds / 1e6)) MB/s (sha256 + write)")
    }

    func testModelNotInTheCacheOffersTheDownloadCommand() {
        XCTAssertThrowsError(try CheckpointLayout.locate("Deci/DeciDiffusion-v1-0", environment: ["HF_HUB_CACHE": cache.path, "HOME": cache.path])) { error in
            XCTAssertTrue("\(error)".contains("decidiffusion download Deci/DeciDiffusion-v1-0"), "\(error)")
        }
    }
}

final class Lines: @unchecked Sendable {
    private let lock = NSLock()
    private var parts: [String] = []
    func append(_ s: String) { lock.lock(); parts.append(s); lock.unlock() }
    var text: String { lock.lock(); defer { lock.unlock() }; return parts.joined() }
}
