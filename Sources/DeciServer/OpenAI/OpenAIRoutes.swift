// The OpenAI Images API (`/v1/images/generations`, `/v1/images/edits`, `/v1/models`), for the
// `openai` SDKs and the tools built on them. Each handler reads the body, lets the request types
// check it, and hands one job to OpenAIImageJob; errors are rendered in OpenAI's shape by path
// (OpenAIErrors).
import DeciDiffusion
import Foundation
import Hummingbird
import NIOCore

struct OpenAIRoutes {
    let service: any JobQueue
    let maxBodyBytes: Int

    func addRoutes(to router: Router<DeciRequestContext>) {
        router.post("/v1/images/generations", use: generations)
        router.post("/v1/images/edits", use: edits)
        router.get("/v1/models", use: models)
        router.get("/v1/models/:id", use: model)
    }

    @Sendable func generations(_ request: Request, context: DeciRequestContext) async throws -> Response {
        let options = try OpenAIImageOptions(OpenAIFields.json(try await body(request).readableBytesView), service: service)
        return try await answer(OpenAIImageJob(service: service, options: options, request: options.generationRequest, kind: .generation),
                                request, context)
    }

    @Sendable func edits(_ request: Request, context: DeciRequestContext) async throws -> Response {
        let form = try OpenAIMultipartForm(body: try await body(request), contentType: request.headers[.contentType])
        let edit = try OpenAIEditRequest(form: form, service: service)
        return try await answer(OpenAIImageJob(service: service, options: edit.options, request: edit.generationRequest, kind: .edit),
                                request, context)
    }

    @Sendable func models(_ request: Request, context: DeciRequestContext) async throws -> Response {
        try json(OpenAIModelListJSON(service.catalog))
    }

    @Sendable func model(_ request: Request, context: DeciRequestContext) async throws -> Response {
        let name = context.parameters.get("id") ?? ""
        let entry: ModelCatalog.Entry
        do { entry = try service.catalog.entry(named: name) } catch { throw APIError(openAI: error) }
        return try json(OpenAIModelJSON(entry))
    }

    // MARK: - Helpers

    func answer(_ job: OpenAIImageJob, _ request: Request, _ context: DeciRequestContext) async throws -> Response {
        if job.options.stream { return try job.stream(context: context) }
        return try await job.respond(context: context, baseURL: Self.baseURL(request))
    }

    func body(_ request: Request) async throws(APIError) -> ByteBuffer {
        do { return try await request.body.collect(upTo: maxBodyBytes) } catch is NIOTooManyBytesError {
            throw APIError.payloadTooLarge(limit: maxBodyBytes)
        } catch {
            throw APIError(.badRequest, code: "invalid_body", "the request body could not be read: \(error)")
        }
    }

    static let forwardedProto = HTTPFields.Element.Name("X-Forwarded-Proto")!

    /// `scheme://host` as the client addressed this server, for `url` answers (behind a proxy, from
    /// X-Forwarded-Proto); empty when the request named no host, which leaves a relative URL.
    static func baseURL(_ request: Request) -> String {
        guard let host = request.head.authority, !host.isEmpty else { return "" }
        let forwarded = request.headers[Self.forwardedProto]?.split(separator: ",").first
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        let scheme = forwarded.flatMap { ["http", "https"].contains($0) ? $0 : nil } ?? "http"
        return "\(scheme)://\(host)"
    }
}
