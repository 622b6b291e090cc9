import DeciDiffusion
import DeciImage
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import XCTest

@testable import DeciServer

/// /sdapi/v1 through the real router on the demo model.
final class A1111RoutesTests: XCTestCase {
    typealias F = ServerFixtures

    static func post(_ client: any TestClientProtocol, _ path: String, _ body: [String: Any]) async throws -> TestResponse {
        try await client.execute(uri: "/sdapi/v1/" + path, method: .post, body: F.jsonBody(body))
    }

    static func ok(_ response: TestResponse, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        XCTAssertEqual(response.status, .ok, String(buffer: response.body), file: file, line: line)
        return try F.object(response, file: file, line: line)
    }

    static func info(_ r: [String: Any]) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(XCTUnwrap(r["info"] as? String).utf8)) as? [String: Any])
    }

    static func png(_ base64: Any?) throws -> DecodedImage {
        let text = try XCTUnwrap(base64 as? String)
        XCTAssertFalse(text.hasPrefix("data:"), "raw base64, as A1111 sends (webuiapi breaks on a data: prefix)")
        return try ImageFile.decode([UInt8](XCTUnwrap(Data(base64Encoded: text))))
    }

    func testTxt2ImgSeedsEachImageAndMatchesANativeJobWithThatSeed() async throws {
        try await F.withServer { client, service in
            let r = try Self.ok(try await Self.post(client, "txt2img", [
                "prompt": "a red circle on a blue background", "negative_prompt": "blurry", "seed": 11, "batch_size": 2, "n_iter": 2,
                "steps": 5, "width": 64, "height": 64, "cfg_scale": 6.5, "sampler_name": "Euler a",
                // What webuiapi and SillyTavern send besides (ignored or at their off values).
                "sampler_index": "Euler a", "restore_faces": false, "tiling": false, "enable_hr": false, "hr_upscaler": "Latent",
                "denoising_strength": 0.7, "eta": 1.0, "s_churn": 0, "s_tmax": 0, "s_tmin": 0, "s_noise": 1, "alwayson_scripts": [String: Any](),
                "override_settings": [String: Any](), "override_settings_restore_afterwards": true, "styles": [String](),
                "subseed": -1, "subseed_strength": 0, "save_images": true, "url": "http://x", "auth": "",
            ]))
            let images = try XCTUnwrap(r["images"] as? [String])
            XCTAssertEqual(images.count, 4)
            let i = try Self.info(r)
            XCTAssertEqual(i["all_seeds"] as? [Int], [11, 12, 13, 14])
            XCTAssertEqual(i["seed"] as? Int, 11)
            XCTAssertEqual(i["sampler_name"] as? String, "Euler a")
            XCTAssertEqual(i["width"] as? Int, 64)
            XCTAssertEqual(i["sd_model_name"] as? String, "demo")
            let infotexts = try XCTUnwrap(i["infotexts"] as? [String])
            XCTAssertEqual(infotexts.count, 4)
            XCTAssertTrue(infotexts[2].contains("Seed: 13,") && infotexts[2].contains("Sampler: Euler a"), infotexts[2])
            XCTAssertEqual((r["parameters"] as? [String: Any])?["seed"] as? Int, 11)

            // Image 2 is exactly a one-image native job with seed 13.
            var request = GenerationRequest(prompt: "a red circle on a blue background", negativePrompt: "blurry")
            (request.steps, request.width, request.height, request.guidanceScale, request.scheduler) = (5, 64, 64, 6.5, "Euler a")
            request.promptWeighting = .a1111
            let job = try service.submit(JobSpec(request: request, seed: 13))
            _ = try await service.waitUntilFinished(job.id)
            XCTAssertEqual(try Self.png(images[2]).image, try ImageFile.decode(service.png(job.id, index: 0)).image)
            XCTAssertEqual(try Self.png(images[2]).text("parameters"), infotexts[2])
        }
    }

    func testDefaultsAreA1111sAndNoSamplerMeansTheCheckpointsScheduler() async throws {
        try await F.withServer { client, _ in
            let r = try Self.ok(try await Self.post(client, "txt2img", ["prompt": "x", "steps": 3, "send_images": false]))
            XCTAssertEqual((r["images"] as? [Any])?.count, 0, "send_images false")
            let i = try Self.info(r)
            XCTAssertEqual(i["width"] as? Int, 512)
            XCTAssertEqual(i["cfg_scale"] as? Double, 7)
            XCTAssertEqual(i["sampler_name"] as? String, "DDIM", "the demo DeciDiffusion's own DDIM")
            let seed = try XCTUnwrap(i["seed"] as? Int)
            XCTAssertTrue((0..<4_294_967_294).contains(seed))
        }
    }

    func testWhatTheEngineCannotDoIsA422NamingTheField() async throws {
        try await F.withServer { client, service in
            let cases: [([String: Any], String)] = [
                (["enable_hr": true], "enable_hr"), (["restore_faces": true], "restore_faces"), (["script_name": "x/y/z plot"], "script_name"),
                (["alwayson_scripts": ["controlnet": ["args": [Any]()]]], "alwayson_scripts"), (["subseed_strength": 0.3], "subseed_strength"),
                (["styles": ["anime"]], "styles"), (["sampler_name": "DPM adaptive"], "sampler_name"), (["steps": "many"], "steps"),
                (["prompt": "a <lora:foo:0.8> cat"], "prompt"), (["override_settings": ["sd_model_checkpoint": "nope"]], "override_settings.sd_model_checkpoint"),
                (["override_settings": ["samples_format": "webp"]], "override_settings.samples_format"), (["batch_size": 0], "batch_size"),
                (["prompt": ["a", "b"]], "prompt"), (["tiling": true], "tiling"), (["s_churn": 0.5], "s_churn"),
            ]
            for (fields, field) in cases {
                let response = try await Self.post(client, "txt2img", ["prompt": "x", "steps": 2, "width": 64, "height": 64].merging(fields) { $1 })
                XCTAssertEqual(response.status, .unprocessableContent, "\(fields)")
                let e = try F.object(response)
                XCTAssertEqual(e["field"] as? String, field, "\(fields): \(e)")
                XCTAssertEqual(e["error"] as? String, "ValidationError")
                XCTAssertNotNil(e["detail"] as? String)
            }
            // The engine's own rules (a size the model cannot take) come back the same way.
            let bad = try await Self.post(client, "txt2img", ["prompt": "x", "width": 65, "height": 64])
            XCTAssertEqual(bad.status, .unprocessableContent)
            XCTAssertEqual(try F.object(bad)["field"] as? String, "width")
            let img = try await Self.post(client, "img2img", ["prompt": "x", "init_images": ["https://example.com/a.png"]])
            XCTAssertEqual(try F.object(img)["field"] as? String, "init_images[0]")
            let none = try await Self.post(client, "img2img", ["prompt": "x"])
            XCTAssertEqual(try F.object(none)["field"] as? String, "init_images")
            let notJSON = try await client.execute(uri: "/sdapi/v1/txt2img", method: .post, body: ByteBuffer(string: "{"))
            XCTAssertEqual(notJSON.status, .unprocessableContent)
            XCTAssertEqual(service.health.queueDepth, 0)
            XCTAssertNil(service.health.running)
        }
    }

    func testImg2ImgWithAMaskKeepsEverythingOutsideIt() async throws {
        try await F.withServer { client, _ in
            let source = try Self.png(try Self.ok(try await Self.post(client, "txt2img", ["prompt": "a red circle on a blue background", "steps": 4,
                                                                            "width": 64, "height": 64, "seed": 1]))["images"].flatMap { ($0 as? [String])?.first })
            // White square in the middle = repaint.
            var maskPixels: [UInt8] = []
            for y in 0..<64 { for x in 0..<64 { maskPixels += Array(repeating: (16..<48).contains(x) && (16..<48).contains(y) ? 255 : 0, count: 3) } }
            let mask = try ImageFile.encodePNG(RGBImage(width: 64, height: 64, pixels: maskPixels))
            let init64 = Data(try ImageFile.encodePNG(source.image)).base64EncodedString()
            for fullRes in [true, false] {
                let r = try Self.ok(try await Self.post(client, "img2img", [
                    "prompt": "a yellow square", "init_images": ["data:image/png;base64," + init64], "mask": Data(mask).base64EncodedString(),
                    "steps": 4, "width": 64, "height": 64, "seed": 3, "denoising_strength": 0.9, "mask_blur": 2,
                    "inpaint_full_res": fullRes, "inpainting_fill": fullRes ? 0 : 1,
                ]))
                let out = try Self.png((r["images"] as? [String])?.first).image
                XCTAssertEqual(out.width, 64)
                var changed = 0
                for y in 0..<64 {
                    for x in 0..<64 {
                        let o = 3 * (y * 64 + x)
                        // Beyond the blurred edge (σ 2 → 5 px) the original pixels are untouched.
                        if x < 10 || x >= 54 || y < 10 || y >= 54 {
                            XCTAssertEqual(Array(out.pixels[o..<(o + 3)]), Array(source.image.pixels[o..<(o + 3)]), "(\(x),\(y)) full_res \(fullRes)")
                        } else if (20..<44).contains(x), (20..<44).contains(y), out.pixels[o..<(o + 3)] != source.image.pixels[o..<(o + 3)] {
                            changed += 1
                        }
                    }
                }
                XCTAssertGreaterThan(changed, 24 * 24 / 2, "the masked area was repainted (full_res \(fullRes))")
                XCTAssertEqual(try Self.info(r)["denoising_strength"] as? Double, 0.9)
            }
        }
    }

    func testProgressInterruptAndSkip() async throws {
        try await F.withServer { client, service in
            let idle = try Self.ok(try await client.execute(uri: "/sdapi/v1/progress", method: .get))
            XCTAssertEqual(idle["progress"] as? Double, 0)
            XCTAssertEqual((idle["state"] as? [String: Any])?["job_count"] as? Int, 0)
            XCTAssertTrue(idle["current_image"] is NSNull)

            // Three long images; skip the first once it runs, then interrupt during the second.
            async let call = Self.post(client, "txt2img", ["prompt": "x", "steps": 1000, "width": 64, "height": 64, "seed": 1, "n_iter": 3])
            func progress() async throws -> [String: Any] { try Self.ok(try await client.execute(uri: "/sdapi/v1/progress", method: .get)) }
            func wait(_ until: ([String: Any]) -> Bool) async throws -> [String: Any] {
                for _ in 0..<2000 {
                    let p = try await progress()
                    if until(p) { return p }
                    try await Task.sleep(for: .milliseconds(5))
                }
                XCTFail("progress never got there")
                return [:]
            }
            let busy = try await wait { (($0["state"] as? [String: Any])?["sampling_step"] as? Int ?? 0) >= 12 }
            let state = try XCTUnwrap(busy["state"] as? [String: Any])
            XCTAssertEqual(state["job_count"] as? Int, 3)
            XCTAssertEqual(state["job_no"] as? Int, 0)
            XCTAssertEqual(state["sampling_steps"] as? Int, 1000)
            XCTAssertGreaterThan(busy["progress"] as? Double ?? 0, 0.01)
            XCTAssertNotNil(busy["current_image"] as? String, "a preview every 10 steps")
            let quiet = try Self.ok(try await client.execute(uri: "/sdapi/v1/progress?skip_current_image=true", method: .get))
            XCTAssertTrue(quiet["current_image"] is NSNull)

            let skip = try await client.execute(uri: "/sdapi/v1/skip", method: .post)
            XCTAssertEqual(skip.status, .ok)
            XCTAssertEqual(String(buffer: skip.body), "null", "A1111 answers skip with null")
            _ = try await wait { ($0["state"] as? [String: Any])?["job_no"] as? Int == 1 && (($0["state"] as? [String: Any])?["sampling_step"] as? Int ?? 0) >= 2 }
            _ = try Self.ok(try await client.execute(uri: "/sdapi/v1/interrupt", method: .post))
            let r = try Self.ok(try await call)
            // The skipped image and the interrupted one come back as partial images; the third never ran.
            XCTAssertEqual((r["images"] as? [String])?.count, 2)
            XCTAssertEqual(try Self.info(r)["all_seeds"] as? [Int], [1, 2])
            try await Task.sleep(for: .milliseconds(50))
            XCTAssertNil(service.health.running)
            XCTAssertEqual(service.health.queueDepth, 0)
            let after = try await progress()
            XCTAssertEqual((after["state"] as? [String: Any])?["job_count"] as? Int, 0)
        }
    }

    func testOptionsRoundTripAndModelsList() async throws {
        try await F.withServer { client, _ in
            let options = try Self.ok(try await client.execute(uri: "/sdapi/v1/options", method: .get))
            let title = try XCTUnwrap(options["sd_model_checkpoint"] as? String)
            XCTAssertTrue(title.hasPrefix("demo ["), title)
            let listed = try await client.execute(uri: "/sdapi/v1/sd-models", method: .get)
            let models = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(listed.body.readableBytesView)) as? [[String: Any]])
            XCTAssertEqual(models.first?["title"] as? String, title)
            XCTAssertEqual(models.first?["model_name"] as? String, "demo")

            // Open WebUI posts the whole dict back with the checkpoint it wants.
            var back = options
            back["CLIP_stop_at_last_layers"] = 2
            back["some_client_setting"] = "kept"
            let set = try await client.execute(uri: "/sdapi/v1/options", method: .post, body: F.jsonBody(back))
            XCTAssertEqual(set.status, .ok, String(buffer: set.body))
            let now = try Self.ok(try await client.execute(uri: "/sdapi/v1/options", method: .get))
            XCTAssertEqual(now["CLIP_stop_at_last_layers"] as? Int, 2)
            XCTAssertEqual(now["some_client_setting"] as? String, "kept")
            let r = try Self.ok(try await Self.post(client, "txt2img", ["prompt": "x", "steps": 2, "width": 64, "height": 64]))
            XCTAssertEqual(try Self.info(r)["clip_skip"] as? Int, 2)
            XCTAssertTrue(((try Self.info(r)["infotexts"] as? [String])?.first ?? "").contains("Clip skip: 2"))

            let unknown = try await client.execute(uri: "/sdapi/v1/options", method: .post, body: F.jsonBody(["sd_model_checkpoint": "sdxl [abc]"]))
            XCTAssertEqual(try F.object(unknown)["field"] as? String, "sd_model_checkpoint")
            for path in ["samplers", "schedulers", "upscalers", "latent-upscale-modes", "sd-vae", "loras", "scripts", "embeddings", "cmd-flags"] {
                let response = try await client.execute(uri: "/sdapi/v1/" + path, method: .get)
                XCTAssertEqual(response.status, .ok, path)
                XCTAssertNoThrow(try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)), path)
            }
        }
    }

    func testTheCheckpointSwitchesByOptionsOrPerCall() async throws {
        try await F.withServer(catalog: try F.twoModels()) { client, service in
            let options = try Self.ok(try await client.execute(uri: "/sdapi/v1/options", method: .get))
            XCTAssertTrue((options["sd_model_checkpoint"] as? String ?? "").hasPrefix("alpha ["))
            let listed = try await client.execute(uri: "/sdapi/v1/sd-models", method: .get)
            let titles = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(listed.body.readableBytesView)) as? [[String: Any]]).compactMap { $0["title"] as? String }
            XCTAssertEqual(titles.count, 2)
            let beta = try XCTUnwrap(titles.first { $0.hasPrefix("beta [") })
            func modelOfCall(_ extra: [String: Any] = [:]) async throws -> String? {
                let r = try Self.ok(try await Self.post(client, "txt2img", ["prompt": "x", "steps": 2, "width": 64, "height": 64].merging(extra) { $1 }))
                return try Self.info(r)["sd_model_name"] as? String
            }
            let viaOverride = try await modelOfCall(["override_settings": ["sd_model_checkpoint": beta]])
            XCTAssertEqual(viaOverride, "beta", "per call")
            let stillAlpha = try await modelOfCall()
            XCTAssertEqual(stillAlpha, "alpha", "an override does not stick")
            let set = try await client.execute(uri: "/sdapi/v1/options", method: .post, body: F.jsonBody(["sd_model_checkpoint": beta]))
            XCTAssertEqual(set.status, .ok, String(buffer: set.body))
            XCTAssertTrue(service.health.models.contains { $0.name == "beta" && $0.loaded }, "loaded by the switch")
            let now = try await modelOfCall()
            XCTAssertEqual(now, "beta")
            // By model name alone, as some clients send it.
            _ = try await client.execute(uri: "/sdapi/v1/options", method: .post, body: F.jsonBody(["sd_model_checkpoint": "alpha"]))
            let back = try await modelOfCall()
            XCTAssertEqual(back, "alpha")
        }
    }

    func testAFullQueueIs429WithRetryAfter() async throws {
        try await F.withServer(configure: { $0.queueSize = 2 }) { client, service in
            let long = try service.submit(JobSpec(request: { var r = GenerationRequest(prompt: "x"); r.steps = 1000; return r }(), seed: 1))
            // Running, not waiting: the queue's two places are free for the call.
            for _ in 0..<2000 where service.health.running != long.id { try await Task.sleep(for: .milliseconds(5)) }
            XCTAssertEqual(service.health.running, long.id)
            let response = try await Self.post(client, "txt2img", ["prompt": "x", "steps": 2, "width": 64, "height": 64, "n_iter": 3])
            XCTAssertEqual(response.status, .tooManyRequests, "three images do not fit a queue of two")
            XCTAssertNotNil(response.headers[.retryAfter])
            XCTAssertEqual(try F.object(response)["error"] as? String, "QueueFull")
            XCTAssertEqual(service.health.queueDepth, 0, "the images already queued were taken back")
            _ = try service.cancel(long.id)
        }
    }

    func testPNGInfoReadsTheInfotext() async throws {
        try await F.withServer { client, _ in
            let r = try Self.ok(try await Self.post(client, "txt2img", ["prompt": "a cat", "steps": 2, "width": 64, "height": 64, "seed": 4]))
            let info = try Self.ok(try await Self.post(client, "png-info", ["image": try XCTUnwrap((r["images"] as? [String])?.first)]))
            XCTAssertTrue((info["info"] as? String ?? "").hasPrefix("a cat\nSteps: 2"))
            let p = try XCTUnwrap(info["parameters"] as? [String: Any])
            XCTAssertEqual(p["Seed"] as? Int, 4)
            XCTAssertEqual(p["Prompt"] as? String, "a cat")
            let bad = try await Self.post(client, "png-info", ["image": "bm90IGFuIGltYWdl"])
            XCTAssertEqual(try F.object(bad)["field"] as? String, "image")
        }
    }
}
