/**
 * A minimal typed builder for ONNX graphs on top of the `onnx-proto` protobuf classes. Only what the
 * tiny test model needs: typed value infos with symbolic/numeric dims, raw-data initializers and nodes
 * with int/float/ints/tensor attributes. The output is a real ModelProto that ONNX Runtime loads.
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

export const DT = { FLOAT: 1, INT64: 7, BOOL: 9 } as const;
export type ElemType = (typeof DT)[keyof typeof DT];
export type Dim = number | string;

type AttrValue = number | number[] | { float: number } | onnxProto.onnx.ITensorProto;

export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs?: Record<string, AttrValue>;
}

export function valueInfo(name: string, elemType: ElemType, dims: Dim[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

export function floatTensor(name: string, dims: number[], data: ArrayLike<number>): onnxProto.onnx.ITensorProto {
  const arr = Float32Array.from(data);
  return { name, dataType: DT.FLOAT, dims, rawData: new Uint8Array(arr.buffer) };
}

export function int64Tensor(name: string, dims: number[], data: ArrayLike<number>): onnxProto.onnx.ITensorProto {
  const arr = BigInt64Array.from(Array.from(data, (v) => BigInt(v)));
  return { name, dataType: DT.INT64, dims, rawData: new Uint8Array(arr.buffer) };
}

function attribute(name: string, v: AttrValue): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`attribute ${name}: use {float} for non-integers`);
    return { name, type: T.INT, i: v };
  }
  if ('float' in v && typeof v.float === 'number') return { name, type: T.FLOAT, f: v.float };
  return { name, type: T.TENSOR, t: v as onnxProto.onnx.ITensorProto };
}

export interface GraphSpec {
  name: string;
  inputs: onnxProto.onnx.IValueInfoProto[];
  outputs: onnxProto.onnx.IValueInfoProto[];
  initializers: onnxProto.onnx.ITensorProto[];
  nodes: NodeSpec[];
}

/** Serialises a graph as an opset-17, IR v8 model (what ORT 1.2x/1.3x accepts without complaint). */
export function encodeModel(spec: GraphSpec, producer: string): Uint8Array {
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: producer,
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: spec.name,
      input: spec.inputs,
      output: spec.outputs,
      initializer: spec.initializers,
      node: spec.nodes.map((n, i) => ({
        opType: n.op,
        name: `${n.op}_${i}`,
        input: n.inputs,
        output: n.outputs,
        attribute: Object.entries(n.attrs ?? {}).map(([k, v]) => attribute(k, v)),
      })),
    },
  });
  return onnx.ModelProto.encode(model).finish();
}
