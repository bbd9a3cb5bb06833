// A node-opcua server for interop tests: an OPC UA stack nobody here wrote.
// node server.js PORT                      no security, anonymous
// node server.js PORT secure PKI_FOLDER    Basic256Sha256 SignAndEncrypt only, user "viewer" / "s3cret", its own
//                                          PKI (certificates made by node-opcua) in PKI_FOLDER; accepts the
//                                          client's certificate; prints "ready NS SERVER_CERT_FILE"
const opcua = require("node-opcua-server");
const { OPCUAServer } = opcua;
const { Variant, DataType, VariantArrayType } = require("node-opcua-variant");
const { StatusCodes } = require("node-opcua-status-code");
const readline = require("readline");
const port = parseInt(process.argv[2], 10);
const secure = process.argv[3] === "secure";
(async () => {
  const options = { port, resourcePath: "", buildInfo: { productName: "interop" }, allowAnonymous: !secure };
  if (secure) {
    const { OPCUACertificateManager } = require("node-opcua-certificate-manager");
    const { MessageSecurityMode } = require("node-opcua-service-secure-channel");
    const { SecurityPolicy } = require("node-opcua-secure-channel");
    const pki = process.argv[4];
    options.serverCertificateManager = new OPCUACertificateManager({
      rootFolder: pki + "/server", automaticallyAcceptUnknownCertificate: true });
    options.userCertificateManager = new OPCUACertificateManager({
      rootFolder: pki + "/user", automaticallyAcceptUnknownCertificate: true });
    options.securityModes = [MessageSecurityMode.SignAndEncrypt];
    options.securityPolicies = [SecurityPolicy.Basic256Sha256];
    options.userManager = { isValidUser: (user, password) => user === "viewer" && password === "s3cret" };
  }
  const server = new OPCUAServer(options);
  await server.initialize();
  const ns = server.engine.addressSpace.getOwnNamespace();
  const line = ns.addFolder("ObjectsFolder", { browseName: "Line1" });
  const st10 = ns.addObject({ organizedBy: line, browseName: "ST10" });
  const vars = {};
  vars.state = ns.addVariable({ componentOf: st10, browseName: "State", nodeId: "s=Line1.ST10.State",
                                dataType: "String", value: { dataType: DataType.String, value: "idle" } });
  vars.vib = ns.addVariable({ componentOf: st10, browseName: "Vibration", nodeId: "s=Line1.ST10.Vibration",
                              dataType: "Double", value: { dataType: DataType.Double, value: 0.0 } });
  vars.joints = ns.addVariable({ componentOf: st10, browseName: "Joints", nodeId: "s=Line1.R1.Joints",
                                 dataType: "Double", valueRank: 1, arrayDimensions: [6],
                                 value: { dataType: DataType.Double, arrayType: VariantArrayType.Array,
                                          value: new Float64Array(6) } });
  await server.start();
  console.log("ready " + ns.index + (secure ? " " + server.certificateFile : ""));
  const rl = readline.createInterface({ input: process.stdin });
  rl.on("line", (text) => {
    const cmd = JSON.parse(text);
    const v = vars[cmd.set];
    const status = cmd.status ? StatusCodes[cmd.status] : StatusCodes.Good;
    let variant;
    if (Array.isArray(cmd.value)) {
      variant = new Variant({ dataType: DataType.Double, arrayType: VariantArrayType.Array,
                              value: Float64Array.from(cmd.value) });
    } else if (typeof cmd.value === "string") {
      variant = new Variant({ dataType: DataType.String, value: cmd.value });
    } else {
      variant = new Variant({ dataType: DataType.Double, value: cmd.value });
    }
    v.setValueFromSource(variant, status, new Date());
    console.log("ok");
  });
  rl.on("close", async () => { await server.shutdown(100); process.exit(0); });
})().catch((e) => { console.error(e); process.exit(1); });
