// One way to load every component from its diffusers folder.
import DeciWeights
import Foundation

/// Reads a component folder: `config.json` through `config`, then hands `build` the weights
/// ``ComponentWeights/locate(in:variant:)`` finds there (`diffusion_pytorch_model[.variant].safetensors`,
/// `model[.variant].safetensors` or a shard index).
/// With `loras`, their modules for `component` are merged into the weights as the layers are built.
func loadComponent<Config, Model>(directory: String, variant: String?, config: (URL) throws(ModelError) -> Config,
                                  loras: LoRASet? = nil, component: LoRAComponent = .denoiser,
                                  build: (Config, WeightStore) throws(ModelError) -> Model) throws(ModelError) -> Model {
    let c = try config(URL(fileURLWithPath: directory).appendingPathComponent("config.json"))
    let store: WeightStore
    do { store = try WeightStore.openComponent(directory, variant: variant) } catch { throw .weights(error) }
    let merge = try loras.map { (set) throws(ModelError) in try set.merge(for: component, store: store) }
    store.adjustments = merge
    let model = try build(c, store)
    do { try merge?.finish() } catch { throw .config(error.description) }
    return model
}
