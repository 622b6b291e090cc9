// `GET /v1/models`: the catalog's models as OpenAI model objects, so clients that list models
// before they generate (Open WebUI, LibreChat, the SDKs' `models.list()`) find what to send as
// `model`.
import DeciDiffusion
import Foundation

struct OpenAIModelJSON: Encodable {
    var id: String
    var object = "model"
    /// When the checkpoint was written (its model_index.json's modification time), 0 if unknown.
    var created: Int
    var ownedBy = "local"
    enum CodingKeys: String, CodingKey {
        case id, object, created
        case ownedBy = "owned_by"
    }

    init(_ entry: ModelCatalog.Entry) {
        id = entry.name
        let index = entry.folder.appendingPathComponent("model_index.json").path
        let modified = (try? FileManager.default.attributesOfItem(atPath: index))?[.modificationDate] as? Date
        created = modified.map { Int($0.timeIntervalSince1970) } ?? 0
    }
}

struct OpenAIModelListJSON: Encodable {
    var object = "list"
    var data: [OpenAIModelJSON]

    init(_ catalog: ModelCatalog) { data = catalog.entries.map(OpenAIModelJSON.init) }
}
