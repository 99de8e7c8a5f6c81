# Pattern from michaelaviram/simple-java-maven-app (Dockerfile): mvn package in a
# builder every platform runs under emulation, though only the jar (bytecode) leaves.
# expect: PA003@6
FROM maven:3.9 AS build
COPY . .
RUN mvn clean package
FROM eclipse-temurin:17-jre-alpine
COPY --from=build target/*.jar app.jar
CMD ["java", "-jar", "app.jar"]
