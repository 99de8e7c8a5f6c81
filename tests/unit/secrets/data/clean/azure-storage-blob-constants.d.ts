};
export declare const ETagNone = "";
export declare const ETagAny = "*";
export declare const SIZE_1_MB: number;
export declare const BATCH_MAX_REQUEST = 256;
export declare const BATCH_MAX_PAYLOAD_IN_BYTES: number;
export declare const HTTP_LINE_ENDING = "\r\n";
export declare const HTTP_VERSION_1_1 = "HTTP/1.1";
export declare const EncryptionAlgorithmAES25 = "AES256";
export declare const DevelopmentConnectionString = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;";
export declare const StorageBlobLoggingAllowedHeaderNames: string[];
export declare const StorageBlobLoggingAllowedQueryParameters: string[];
export declare const BlobUsesCustomerSpecifiedEncryptionMsg = "BlobUsesCustomerSpecifiedEncryption";
export declare const BlobDoesNotUseCustomerSpecifiedEncryption = "BlobDoesNotUseCustomerSpecifiedEncryption";
export declare const PathStylePorts: string[];
//# sourceMappingURL=constants.d.ts.map