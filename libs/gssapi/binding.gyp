{
  # In the workspace: built by the Nx target `gssapi:build-native` (node-gyp rebuild --nodedir=/usr),
  # cached by Nx. As the published @forwardable/gssapi: built from source by its `install` script
  # (npm 11 asks projects to approve it: `npm install-scripts approve @forwardable/gssapi`).
  "targets": [
    {
      "target_name": "gssapi",
      "sources": [
        "src/native/addon.cc",
        "src/native/common.cc",
        "src/native/credential.cc",
        "src/native/context.cc",
        "src/native/password.cc",
        "src/native/name_attributes.cc",
        "src/native/seal.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["-lgssapi_krb5", "-lkrb5", "-lcom_err"]
    }
  ]
}
